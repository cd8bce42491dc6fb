"""Models: the shared char-level tokenizer (:mod:`.tokenizer`), the model factory and checkpoint io."""
