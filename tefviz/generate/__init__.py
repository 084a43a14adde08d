"""Generation with an evicted KV cache, beside dense generation of the same prompt."""
