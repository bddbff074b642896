"""Client: starts and talks to the backend process. Never imports bpy (DESIGN §2)."""
