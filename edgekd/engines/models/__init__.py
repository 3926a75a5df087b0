"""Building networks, loading weights safely, and the model artifact every stage hands on."""
