"""What the families run on: the native transformer, reading weights and tokenizers,
adapters, chat framing and the numbers ``lacuna doctor`` reports."""
