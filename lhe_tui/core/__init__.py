"""What every layer shares: the run's definition (`config.RunConfig`) and the events the runner emits and
the store, replay and UI consume (`events`). Imports only `lhe_tui.common.errors` and `lhe_tui.task` (the
protocol and prompt names a config is checked against); nothing here runs anything."""
