"""parley-cli: register, log in, list/create/join rooms and chat from a terminal."""
