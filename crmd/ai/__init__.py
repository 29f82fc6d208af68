"""AI suggestions: message variants, rules from sentences, summaries, tags. Plugins answer;
crmd asks them in order and keeps the first answer that passes its own checks."""
