"""StepFlow inference component server."""
