"""Build step of the package: compiles the USP protobuf schema.

Everything else about the package is declared in pyproject.toml. The USP
schema (oktoscripts/usp/proto/*.proto) is compiled to *_pb2.py modules by
grpcio-tools' bundled protoc during every build, editable installs included
(``pip install -e .``), so generated code is never committed nor written by
hand, and it always matches the .proto files of the checkout.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO_DIR = Path(__file__).resolve().parent / "oktoscripts" / "usp" / "proto"


def compile_usp_schema() -> None:
    """Run protoc on every .proto file of PROTO_DIR, writing the modules beside them."""
    from importlib.resources import files

    from grpc_tools import protoc

    well_known_types = str(files("grpc_tools") / "_proto")
    for proto in sorted(PROTO_DIR.glob("*.proto")):
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_DIR}",
            f"--proto_path={well_known_types}",
            f"--python_out={PROTO_DIR}",
            f"--pyi_out={PROTO_DIR}",
            str(proto),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")


class BuildWithUspSchema(build_py):
    def run(self) -> None:
        compile_usp_schema()
        super().run()


setup(cmdclass={"build_py": BuildWithUspSchema})
