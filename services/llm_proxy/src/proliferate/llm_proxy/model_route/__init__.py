"""Model routes: the public model names the proxy serves, where each goes, and its price."""
