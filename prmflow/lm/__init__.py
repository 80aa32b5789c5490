"""Language models: building or loading them (tiny default or any Hugging Face causal LM),
sampling from them, token log-probabilities, and supervised fine-tuning."""
