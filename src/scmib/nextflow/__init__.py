"""Offline checks of the Nextflow workflow, its configuration and the component containers."""
