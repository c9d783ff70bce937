"""Builds the client package with its gRPC stubs, generated from ``../protos`` at build time.

``pip install ./clients`` (or ``pip wheel ./clients``) from a checkout runs ``grpc_tools.protoc`` over
the repository's ``protos/ew`` into the build directory, so the wheel carries ``ew.roster.v1`` and
``ew.sync.v1`` although the working tree has no generated files (``make proto`` writes its own, for
development, into ``src/``). An sdist gets the stubs written into its tree, because ``../protos`` is
not part of it; building a wheel from that sdist then uses them as they are.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PROTOS = HERE.parent / "protos"
STUB_PACKAGES = ("ew/roster", "ew/sync")


def generate_stubs(destination: Path) -> None:
    """Write the stubs (``*_pb2.py``, ``*_pb2_grpc.py``, ``*.pyi``) and the descriptor set of ``protos/ew``."""
    import grpc_tools
    from grpc_tools import protoc

    sources = sorted(str(path.relative_to(PROTOS)) for path in (PROTOS / "ew").rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    destination.mkdir(parents=True, exist_ok=True)
    arguments = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={destination}",
        f"--pyi_out={destination}",
        f"--grpc_python_out={destination}",
        # The gateway reads the API's comments (its OpenAPI descriptions) from this descriptor set.
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={destination / 'ew/sync/v1/api.binpb'}",
        *sources,
    ]
    if protoc.main(arguments) != 0:
        raise RuntimeError(f"protoc failed on {PROTOS}")
    for package in STUB_PACKAGES:
        (destination / package / "py.typed").touch()


class BuildPyWithStubs(build_py):
    """Copies the package, then generates the stubs into the build directory (from a checkout)."""

    def run(self) -> None:
        """Build as usual, then add the stubs."""
        super().run()
        if PROTOS.is_dir():
            generate_stubs(Path(self.build_lib))


class SdistWithStubs(sdist):
    """An sdist that carries the generated stubs, since ``../protos`` is outside it."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        """Lay out the sdist, then add the stubs to it."""
        super().make_release_tree(base_dir, files)
        if PROTOS.is_dir():
            generate_stubs(Path(base_dir) / "src")


setup(cmdclass={"build_py": BuildPyWithStubs, "sdist": SdistWithStubs})
