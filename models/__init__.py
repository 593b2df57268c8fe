"""The NLP side of escucha: text encoder, sentiment model, training and evaluation."""
