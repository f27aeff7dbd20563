"""Task families. Each subpackage registers its Task with `@register_task` when imported."""
