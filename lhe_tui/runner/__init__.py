"""The UI-free async runner: config, history policies, events, retries."""
