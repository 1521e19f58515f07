"""Intuitive physics: surprise as latent prediction error, and the violation-of-expectation metrics."""
