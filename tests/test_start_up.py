"""What a command reads at start, read faster: the same data."""


def test_the_playbook_and_markers_read_the_same_with_either_yaml_parser():
    """LibYAML's parser (used where installed, for start-up time) gives the pure-Python loader's data."""
    import yaml

    from pipeline.handling.playbook import _safe_load as playbook_load
    from pipeline.knowledge import lexicon_file, playbook_dir
    from pipeline.model.features import _safe_load as features_load

    files = sorted(playbook_dir().glob("*.yaml")) + [lexicon_file("markers.yaml")]
    for f in files:
        for load in (playbook_load, features_load):
            with open(f, encoding="utf-8") as a, open(f, encoding="utf-8") as b:
                assert load(a) == yaml.safe_load(b), f.name
