"""Click and open tracking's signed links (pure, a leaf: campaigns make the links,
receipts read them)."""
