"""Shape inputs: mesh loading and its refusals, scenes, voxel inputs, load_shape frames."""

from __future__ import annotations

import builtins
import hashlib
from pathlib import Path

import numpy as np
import pytest
import trimesh

from occcodec.errors import InputError, UsageError
from occcodec.shapes import inputs
from occcodec.shapes.gridio import write_binvox, write_npz
from occcodec.shapes.inputs import (
    MESH_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    VOXEL_EXTENSIONS,
    Shape,
    load_mesh,
    load_shape,
    sha256_file,
)

SHARED_MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"

GARBAGE = np.random.default_rng(0).bytes(3000)


def test_extension_sets() -> None:
    assert MESH_EXTENSIONS == {".obj", ".stl", ".ply", ".off", ".glb", ".gltf"}
    assert VOXEL_EXTENSIONS == {".npz", ".binvox"}
    assert SUPPORTED_EXTENSIONS == MESH_EXTENSIONS | VOXEL_EXTENSIONS


# ------------------------------------------------------------------ refusals


def test_missing_directory_empty(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_mesh(tmp_path / "nope.obj")
    with pytest.raises(InputError, match="is a directory"):
        load_mesh(tmp_path)
    (tmp_path / "empty.stl").write_bytes(b"")
    with pytest.raises(InputError, match=r"is empty \(0 bytes\)"):
        load_mesh(tmp_path / "empty.stl")


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "locked.obj"
    trimesh.creation.box().export(p)
    real_open = builtins.open

    def deny(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(file, (str, Path)) and Path(file) == p:
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    message = r"cannot be read \(Permission denied\): check its permissions"
    with pytest.raises(InputError, match=message):
        load_mesh(p)


def test_unsupported_extension_lists_supported(tmp_path: Path) -> None:
    p = tmp_path / "shape.3ds"
    p.write_bytes(b"abc")
    message = r"unsupported extension \.3ds: use one of \.binvox, \.glb"
    with pytest.raises(InputError, match=message):
        load_mesh(p)
    with pytest.raises(InputError, match="unsupported extension"):
        load_shape(p)
    q = tmp_path / "noext"
    q.write_bytes(b"abc")
    with pytest.raises(InputError, match=r"unsupported extension \(none\)"):
        load_mesh(q)


@pytest.mark.parametrize("ext", sorted(MESH_EXTENSIONS))
def test_garbage_bytes_with_mesh_extension(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"junk{ext}"
    p.write_bytes(GARBAGE)
    with pytest.raises(InputError, match=r"cannot be read as a|holds no triangles") as info:
        load_mesh(p)
    assert "\n" not in str(info.value)


def test_point_cloud_refused(tmp_path: Path) -> None:
    pts = np.random.default_rng(1).random((40, 3))
    p = tmp_path / "cloud.ply"
    trimesh.PointCloud(pts).export(p)
    with pytest.raises(InputError, match=r"point cloud \(no triangles\): give a surface mesh"):
        load_mesh(p)
    q = tmp_path / "verts.obj"
    q.write_text("".join(f"v {a} {b} {c}\n" for a, b, c in pts))
    with pytest.raises(InputError, match="no triangles"):
        load_mesh(q)


def test_no_faces_refused(tmp_path: Path) -> None:
    p = tmp_path / "nofaces.off"
    p.write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    with pytest.raises(InputError, match="no triangles"):
        load_mesh(p)


def test_nan_vertices_refused(tmp_path: Path) -> None:
    p = tmp_path / "nan.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv nan 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n")
    with pytest.raises(InputError, match="NaN or infinite vertex coordinates"):
        load_mesh(p)
    q = tmp_path / "inf.obj"
    q.write_text("v 0 0 0\nv 1 0 0\nv inf 1 0\nf 1 2 3\n")
    with pytest.raises(InputError, match="NaN or infinite"):
        load_mesh(q)


def test_bad_face_index_refused(tmp_path: Path) -> None:
    p = tmp_path / "badidx.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    with pytest.raises(InputError):
        load_mesh(p)


def test_voxel_file_is_not_a_mesh(tmp_path: Path) -> None:
    p = write_npz(tmp_path / "g.npz", np.ones((16, 16, 16), bool))
    with pytest.raises(InputError, match="voxel file, not a mesh"):
        load_mesh(p)


# ------------------------------------------------------------------ valid but strange


def test_strange_but_valid_mesh_is_handled(tmp_path: Path) -> None:
    box = trimesh.creation.box()
    v = np.concatenate([box.vertices, box.vertices])  # duplicate vertices
    f = np.concatenate(
        [
            box.faces,
            box.faces + 8,  # duplicate faces on the duplicate vertices
            [[0, 0, 1], [2, 2, 2]],  # degenerate faces
            [[0, 1, 9], [0, 1, 10]],  # extra faces on an existing edge: non-manifold
        ]
    )
    p = tmp_path / "strange.obj"
    p.write_text(
        "".join(f"v {a} {b} {c}\n" for a, b, c in v)
        + "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in f)
    )
    mesh = load_mesh(p)
    assert len(mesh.vertices) == 8  # merged by position
    shape = load_shape(p, resolution=24)
    assert shape.occupancy.any()


def test_uv_seams_do_not_break_watertightness(tmp_path: Path) -> None:
    """OBJ texture seams split vertices; merging by position restores a closed surface."""
    sphere = trimesh.creation.uv_sphere(count=[12, 12])
    p = tmp_path / "seams.obj"
    v = sphere.vertices[sphere.faces].reshape(-1, 3)  # every face gets its own corners
    faces = np.arange(len(v)).reshape(-1, 3)
    p.write_text(
        "".join(f"v {a} {b} {c}\n" for a, b, c in v)
        + "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces)
    )
    assert load_mesh(p).is_watertight


def _write_off(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    path.write_text(f"OFF\n{len(vertices)} {len(faces)} 0\n"
                    + "".join(f"{a} {b} {c}\n" for a, b, c in vertices)
                    + "".join(f"3 {a} {b} {c}\n" for a, b, c in faces))


def test_inconsistent_orientation_is_turned_and_noted(tmp_path: Path) -> None:
    """A closed surface with half of its faces turned: loading turns them back (each part
    outward), says so, and the centre rule then gives the solid the surface encloses."""
    from occcodec.shapes.inside import centre_grid

    box = trimesh.creation.box(extents=(1.0, 0.8, 0.6))
    faces = np.asarray(box.faces).copy()
    faces[::2] = faces[::2, ::-1]  # every other face turned: neighbours disagree
    p = tmp_path / "turned.off"
    _write_off(p, np.asarray(box.vertices), faces)
    mesh = load_mesh(p)
    assert mesh.is_winding_consistent and mesh.volume == pytest.approx(0.48)
    assert "turned 6 of 12 faces" in mesh.metadata[inputs.NOTE_KEY]
    dims = (24, 24, 24)
    truth = centre_grid(box, (0.0, 0.0, 0.0), 0.6, dims)
    assert truth.sum() > 0
    assert np.array_equal(centre_grid(mesh, (0.0, 0.0, 0.0), 0.6, dims), truth)
    shape = load_shape(p, resolution=24)
    assert "turned 6 of 12 faces" in (shape.fill_note or "")


def test_consistent_mesh_is_not_touched(tmp_path: Path) -> None:
    box = trimesh.creation.box(extents=(1.0, 0.8, 0.6))
    inverted = np.asarray(box.faces)[:, ::-1].copy()  # consistent, inside out: kept as is
    p = tmp_path / "inverted.off"
    _write_off(p, np.asarray(box.vertices), inverted)
    mesh = load_mesh(p)
    assert inputs.NOTE_KEY not in mesh.metadata
    assert mesh.volume == pytest.approx(-0.48)
    assert inputs.orient_consistently(mesh) == 0


# ------------------------------------------------------------------ scenes


def test_scene_glb_merges_meshes_in_world_space(tmp_path: Path) -> None:
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(extents=(1, 1, 1)), node_name="a")
    moved = np.eye(4)
    moved[:3, 3] = [3.0, 0.0, 0.0]
    ball = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    scene.add_geometry(ball, node_name="b", transform=moved)
    p = tmp_path / "two.glb"
    scene.export(p)
    mesh = load_mesh(p)
    assert len(mesh.faces) == 12 + 80
    assert mesh.bounds[0] == pytest.approx([-0.5, -0.5, -0.5], abs=1e-6)
    assert mesh.bounds[1] == pytest.approx([3.5, 0.5, 0.5], abs=1e-6)
    shape = load_shape(p, resolution=32, fill="auto")
    assert shape.fill == "solid"
    # Two separate parts along x.
    assert not shape.occupancy[:, 16, 16].all() and shape.occupancy[:, 16, 16].any()


# ------------------------------------------------------------------ load_shape


def test_load_shape_voxel_frame(tmp_path: Path) -> None:
    grid = np.zeros((40, 32, 48), bool)
    grid[5:30, 4:20, 10:40] = True
    for name, write in (("g.npz", write_npz), ("g.binvox", write_binvox)):
        shape = load_shape(write(tmp_path / name, grid), resolution=64, fill="shell")
        assert isinstance(shape, Shape)
        assert np.array_equal(shape.occupancy, grid)
        assert shape.fill == "given" and shape.source_kind == "voxels" and shape.mesh is None
        assert shape.center == (20.0, 16.0, 24.0)
        assert shape.scale == 24.0
        # World = voxel index space: voxel i spans [i, i+1], so its centre is i + 0.5.
        idx = np.array([[0, 0, 0], [39, 31, 47], [7, 3, 11]])
        assert np.allclose(shape.index_to_world(idx), idx + 0.5)
        assert np.abs(shape.index_to_normalized(idx)).max() < 1.0


def test_load_shape_mesh_frame(tmp_path: Path) -> None:
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    box.apply_translation([1.0, 2.0, 3.0])
    p = tmp_path / "box.stl"
    box.export(p)
    shape = load_shape(p, resolution=32)
    assert shape.source_kind == "mesh" and shape.fill == "solid" and shape.mesh is not None
    assert "watertight" in shape.fill_note
    world = shape.index_to_world(np.argwhere(shape.occupancy))
    h = 2.0 / 30
    assert (world >= box.bounds[0] - h / 2 - 1e-9).all()
    assert (world <= box.bounds[1] + h / 2 + 1e-9).all()
    assert shape.center == pytest.approx((1.0, 2.0, 3.0))


def test_load_shape_usage_errors(tmp_path: Path) -> None:
    p = tmp_path / "box.ply"
    trimesh.creation.box().export(p)
    # meshes go up to 1024 (issue 11: learnt from the mesh, measured at any R)
    with pytest.raises(UsageError, match="resolution 1100 is outside 16..1024"):
        load_shape(p, resolution=1100)
    with pytest.raises(UsageError, match="resolution 15 is outside 16..1024"):
        load_shape(p, resolution=15)
    with pytest.raises(UsageError, match="fill 'full' is not one of auto, solid, shell"):
        load_shape(p, fill="full")


def test_load_shape_flat_solid_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "quad.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3\nf 1 3 4\n")
    message = r"quad\.obj.*mesh is flat \(encloses no volume\): use --fill shell"
    with pytest.raises(InputError, match=message):
        load_shape(p, resolution=16, fill="solid")
    assert load_shape(p, resolution=16).fill == "shell"


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "data.bin"
    data = GARBAGE * 500  # > 1 MiB: several blocks
    p.write_bytes(data)
    assert sha256_file(p) == hashlib.sha256(data).hexdigest()


def test_trimesh_is_imported_lazily() -> None:
    # The module itself holds no trimesh reference; load_mesh imports it on first use.
    assert "trimesh" not in vars(inputs)


# ------------------------------------------------------------------ shipped samples


@pytest.mark.parametrize(
    ("name", "fill"),
    [("bracket.stl", "solid"), ("torus.ply", "solid"), ("mug.obj", "solid"), ("cloth.obj", "shell"),
     ("blob.npz", "given")],
)
def test_samples(name: str, fill: str) -> None:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} not built (run samples/make_samples.py)")
    assert path.stat().st_size < 200_000
    shape = load_shape(path, resolution=32)
    assert shape.fill == fill, shape.fill_note
    if name == "blob.npz":
        assert shape.occupancy.shape == (40, 32, 48)
    if name == "mug.obj":
        # The cavity stays empty: the centre column is filled only at the bottom.
        column = shape.occupancy[15:17, 15:17, :].all(axis=(0, 1))
        assert column.any() and not column.all()


# ------------------------------------------------------------------ shared meshes


@pytest.mark.parametrize(
    "name", ["BoxTextured.glb", "Spider_binary.stl", "Wuson.off", "ant.ply", "suzanne.obj"]
)
def test_shared_meshes_load(name: str) -> None:
    path = SHARED_MESHES / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    shape = load_shape(path, resolution=32)
    assert shape.occupancy.shape == (32, 32, 32) and shape.occupancy.any()
    # One voxel of margin along the longest axis.
    occupied = np.argwhere(shape.occupancy)
    assert occupied.min() >= 1 and occupied.max() <= 30
