"""Seeds, bootstrap intervals over test cells, and how sure each ranking is."""
