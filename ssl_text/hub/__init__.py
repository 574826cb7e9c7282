"""Publishing to the Hugging Face Hub: model cards (`model_card`) and uploads (`push`)."""
