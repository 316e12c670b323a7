"""The orchestration of runs: start or resume one (session, resume_state, run_process), fork it, run arms side by side, probe, rebuild a turn's request; run flags read into a config (overrides)."""
