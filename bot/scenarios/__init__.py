"""The scenario engine: reacts to messages, calls, leads and variables; runs and schedules
the rules of the scenario file (TRUBKA_SCENARIOS)."""
