"""After the trigger: watching runs to their end and telling how they ended."""
