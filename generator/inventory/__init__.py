"""The public input format (services.yaml): its YAML loader and its pydantic schema."""
