"""Images: tokenizers that turn a picture into scored tokens, one ViT classifier behind them, and
the thresholds that drop tokens (Fashion-MNIST, 32x32 padded, an 8x8 grid of 4x4-pixel tokens)."""
