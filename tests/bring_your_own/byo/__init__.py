"""A user's own model family and dataset, as they would sit in their project (see
docs/bring-your-own.md); tests/test_bring_your_own.py copies this folder into a scratch project."""
