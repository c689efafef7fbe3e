"""Real servers started in-process for the demo and the tests: Valkey and an SMTP catcher."""
