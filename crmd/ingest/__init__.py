"""CSV ingestion: parse and validate uploads, publish them in chunks, persist them."""
