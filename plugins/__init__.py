"""Built-in facebone plugins, registered through entry points like any third-party plugin."""
