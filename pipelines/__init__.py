"""DVC stages as thin Hydra apps: compose config, call the library, write results."""
