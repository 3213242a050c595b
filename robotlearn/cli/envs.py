"""`robotlearn envs`: list registered environment names."""
from robotlearn.envs import list_envs


def main(argv: list[str]) -> int:
    for name in list_envs():
        print(name)
    return 0
