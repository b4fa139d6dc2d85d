"""Stages 1-3 input side: the releases we know, downloading and caching them, reading archives
into canonical frames (and their schema), and synthetic releases for scale tests."""
