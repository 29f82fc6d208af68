"""Sign-in (Google, dev login), crmd's own tokens, and who is asking."""
