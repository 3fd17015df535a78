"""What a command reads at start, read faster: the same data."""


def test_every_bundled_yaml_file_reads_the_same_with_libyaml_as_with_the_pure_python_loader():
    """LibYAML's parser (used where installed, for start-up time) gives the pure-Python loader's data:
    the playbook, the lexicons and the taxonomy."""
    import yaml

    from pipeline.knowledge import bundled, safe_yaml

    files = sorted(bundled().rglob("*.yaml"))
    assert len(files) >= 10
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert safe_yaml(text) == yaml.safe_load(text), f.name
