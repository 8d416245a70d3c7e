"""The local runner: plans datasets x methods x metrics and runs each component as a process."""
