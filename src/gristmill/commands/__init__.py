"""Click commands, one module per area; ``gristmill.cli`` assembles them."""
