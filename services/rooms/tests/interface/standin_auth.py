"""A stand-in for the auth service's `get_users` RPC, for the rooms tests only.

The real auth service is developed in parallel; rooms needs nothing from it but
`get_users(user_ids) -> {id: public user}`. This is a real nameko service on the real broker
(same wire protocol, same "rpc-auth" queue), answering from a JSON file the tests write:
what auth "knows", whether or not the user_registered event has reached rooms yet.

Run: STANDIN_USERS_FILE=... python -m standin_auth   (with this directory on PYTHONPATH)
"""
import parley_common.green  # noqa: F401

import json
import os

from nameko.cli.run import run

from parley_common.nameko_support import nameko_config, rpc


class StandinAuth:
    name = "auth"

    @rpc
    def get_users(self, user_ids):
        try:
            with open(os.environ["STANDIN_USERS_FILE"]) as handle:
                known = json.load(handle)
        except FileNotFoundError:
            known = {}
        return {user_id: known[user_id] for user_id in user_ids if user_id in known}


if __name__ == "__main__":
    run([StandinAuth], nameko_config())
