//! The cache's writer and reader: resume, splits, and every way a cache could lie.
use super::*;
use crate::manifest::Row;

fn manifest(rows: usize) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        model: "m".into(),
        model_hash: "abc".into(),
        hooks: vec!["blocks.0.hook_resid_post".into()],
        dims: vec![3],
        positions: "last".into(),
        dtype: "f32".into(),
        label_names: vec!["a".into(), "b".into()],
        source: Default::default(),
        shard_size: 2,
        rows: (0..rows)
            .map(|i| Row {
                id: format!("r{i}"),
                label: Some(i % 2),
                group: None,
                meta: Default::default(),
            })
            .collect(),
    }
}

fn block(i: usize, m: &Manifest) -> Vec<f32> {
    let (s, e) = m.shard_rows(i);
    (s * 3..e * 3).map(|x| x as f32).collect()
}

#[test]
fn resumes_split_jobs_and_reads_back_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let m = manifest(5);
    let mut w0 = CacheWriter::open(&dir, m.clone(), "0/2".parse().unwrap(), false).unwrap();
    assert_eq!(w0.pending(), vec![0, 2]);
    w0.write_shard(0, &[block(0, &m)]).unwrap();
    assert!(CacheReader::open(&dir)
        .unwrap_err()
        .to_string()
        .contains("2 of 3 shards missing"));
    // "Killed" (its locks go with the process) and restarted: shard 0 is not redone.
    drop(w0);
    let mut w0 = CacheWriter::open(&dir, m.clone(), "0/2".parse().unwrap(), false).unwrap();
    assert_eq!(w0.pending(), vec![2]);
    w0.write_shard(2, &[block(2, &m)]).unwrap();
    let mut w1 = CacheWriter::open(&dir, m.clone(), "1/2".parse().unwrap(), false).unwrap();
    assert_eq!(w1.pending(), vec![1]);
    w1.write_shard(1, &[block(1, &m)]).unwrap();
    assert!(w1.is_complete().unwrap());
    let (data, dim) = CacheReader::open(&dir)
        .unwrap()
        .read_hook("blocks.0.hook_resid_post")
        .unwrap();
    assert_eq!(dim, 3);
    assert_eq!(data, (0..15).map(|x| x as f32).collect::<Vec<_>>());
}

#[test]
fn a_cache_for_other_hooks_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    CacheWriter::open(&dir, manifest(4), ShardSplit::default(), false).unwrap();
    let mut other = manifest(4);
    other.hooks = vec!["blocks.1.hook_resid_post".into()];
    let err = CacheWriter::open(&dir, other.clone(), ShardSplit::default(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("was made for hook points"), "{err}");
    assert!(CacheWriter::open(&dir, other, ShardSplit::default(), true).is_ok());
    assert!("3/2".parse::<ShardSplit>().is_err());
}

/// A finished 3-shard cache of `manifest(5)` in `dir`.
fn filled(dir: &Path) -> Manifest {
    let m = manifest(5);
    let mut w = CacheWriter::open(dir, m.clone(), ShardSplit::default(), false).unwrap();
    for i in w.pending() {
        w.write_shard(i, &[block(i, &m)]).unwrap();
    }
    m
}

fn read_err(dir: &Path) -> String {
    match CacheReader::open(dir) {
        Err(e) => e.to_string(),
        Ok(r) => r
            .read_hook("blocks.0.hook_resid_post")
            .expect_err("the cache should be refused")
            .to_string(),
    }
}

#[test]
fn swapped_shards_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    filled(&dir);
    let (a, b) = (dir.join(shard_file(0)), dir.join(shard_file(1)));
    std::fs::rename(&a, dir.join("x")).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(dir.join("x"), &b).unwrap();
    let err = read_err(&dir);
    assert!(err.contains("content differs"), "{err}");
}

#[test]
fn a_shard_with_the_right_hash_but_wrong_rows_is_refused() {
    // shards 0 and 1 have the same size; swap them and their progress records' hashes
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    filled(&dir);
    let progress = dir.join("progress-0-of-1.json");
    let mut p: Progress =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    let (h0, h1) = (p.shards[0].sha256.clone(), p.shards[1].sha256.clone());
    p.shards[0].sha256 = h1;
    p.shards[1].sha256 = h0;
    std::fs::write(&progress, serde_json::to_vec(&p).unwrap()).unwrap();
    let (a, b) = (dir.join(shard_file(0)), dir.join(shard_file(1)));
    std::fs::rename(&a, dir.join("x")).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(dir.join("x"), &b).unwrap();
    let err = read_err(&dir);
    assert!(err.contains("does not hold rows [0, 2)"), "{err}");
    // a record whose row range disagrees with the manifest is refused on open
    p.shards[0].rows = [2, 4];
    std::fs::write(&progress, serde_json::to_vec(&p).unwrap()).unwrap();
    assert!(read_err(&dir).contains("recorded with rows [2, 4]"));
}

#[test]
fn a_shard_of_the_wrong_dtype_is_refused_even_with_a_matching_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let (f16_dir, dir) = (tmp.path().join("h"), tmp.path().join("c"));
    filled(&dir);
    let mut m = manifest(5);
    m.dtype = "f16".into();
    let mut w = CacheWriter::open(&f16_dir, m.clone(), ShardSplit::default(), false).unwrap();
    w.write_shard(1, &[block(1, &m)]).unwrap();
    // shard 1 replaced by an f16 shard, and its record with the f16 shard's record
    std::fs::copy(f16_dir.join(shard_file(1)), dir.join(shard_file(1))).unwrap();
    let progress = dir.join("progress-0-of-1.json");
    let mut p: Progress =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    let theirs: Progress = serde_json::from_str(
        &std::fs::read_to_string(f16_dir.join("progress-0-of-1.json")).unwrap(),
    )
    .unwrap();
    p.shards[1] = theirs.shards[0].clone();
    std::fs::write(&progress, serde_json::to_vec(&p).unwrap()).unwrap();
    let err = read_err(&dir);
    assert!(
        err.contains("dtype F16, but the manifest says f32"),
        "{err}"
    );
}

#[test]
fn a_deleted_manifest_over_shards_is_refused_unless_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    filled(&dir);
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let mut other = manifest(5);
    other
        .source
        .insert("inputs_sha256".into(), "changed".into());
    let err = CacheWriter::open(&dir, other.clone(), ShardSplit::default(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no manifest.json"), "{err}");
    let w = CacheWriter::open(&dir, other, ShardSplit::default(), true).unwrap();
    assert_eq!(w.pending(), vec![0, 1, 2]);
}

#[test]
fn changed_inputs_are_a_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    filled(&dir);
    let mut other = manifest(5);
    other
        .source
        .insert("inputs_sha256".into(), "changed".into());
    let err = CacheWriter::open(&dir, other, ShardSplit::default(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("was made for source"), "{err}");
}

/// The same weights by another path (relative here, absolute there) reuse the cache; a
/// changed row is named by its index, not as "rows: … ≠ …".
#[test]
fn the_models_path_is_not_its_identity_and_a_changed_row_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    filled(&dir);
    let mut moved = manifest(5);
    moved.model = "/somewhere/else/m".into();
    let w = CacheWriter::open(&dir, moved, ShardSplit::default(), false).unwrap();
    assert!(w.pending().is_empty() && w.is_complete().unwrap());
    drop(w);
    let mut relabelled = manifest(5);
    relabelled.rows[3].label = Some(0);
    let err = CacheWriter::open(&dir, relabelled, ShardSplit::default(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("was made for row 3: Row"), "{err}");
    assert!(
        err.contains("label: Some(1)") && err.contains("label: Some(0)"),
        "{err}"
    );
}

#[test]
fn locks_refuse_a_second_writer_of_a_job_and_an_overwrite_under_a_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let m = manifest(5);
    let first = CacheWriter::open(&dir, m.clone(), ShardSplit::default(), false).unwrap();
    let same = CacheWriter::open(&dir, m.clone(), ShardSplit::default(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        same.contains("job 0/1 is already filling this cache"),
        "{same}"
    );
    let over = CacheWriter::open(&dir, m.clone(), ShardSplit::default(), true)
        .err()
        .unwrap()
        .to_string();
    assert!(
        over.contains("cannot overwrite a cache that is in use"),
        "{over}"
    );
    // other jobs of a k/n split work alongside
    let other = CacheWriter::open(&dir, m.clone(), "1/2".parse().unwrap(), false).unwrap();
    drop((first, other));
    let w = CacheWriter::open(&dir, m.clone(), ShardSplit::default(), true).unwrap();
    // while it overwrites, neither writers nor readers get in
    let during = CacheWriter::open(&dir, m, "1/2".parse().unwrap(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(during.contains("being overwritten"), "{during}");
    drop(w);
}

#[test]
fn leftovers_are_removed_and_overwrite_refuses_a_foreign_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        ".shard-00000.safetensors.tmp-999999",
        ".shard-00001.safetensors.tmp-999999",
        ".progress-0-of-2.json.tmp-1",
    ] {
        std::fs::write(dir.join(name), b"partial").unwrap();
    }
    let w = CacheWriter::open(&dir, manifest(5), "0/2".parse().unwrap(), false).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    left.sort();
    // job 0/2 owns shard 0 and its progress file; shard 1 belongs to job 1/2
    assert_eq!(left, [".shard-00001.safetensors.tmp-999999"]);
    drop(w);

    let home = tmp.path().join("notes");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("thesis.tex"), b"precious").unwrap();
    let err = CacheWriter::open(&home, manifest(5), ShardSplit::default(), true)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("is not a probe cache"), "{err}");
    assert!(home.join("thesis.tex").is_file());
}

#[test]
fn a_cache_of_an_older_format_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    filled(&dir);
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"format_version\": 2", "\"format_version\": 1");
    std::fs::write(&path, text).unwrap();
    let err = read_err(&dir);
    assert!(err.contains("format version 1"), "{err}");
    std::fs::write(&path, b"{").unwrap();
    assert!(read_err(&dir).contains("unreadable manifest"));
}

#[test]
fn an_overwriting_writer_hands_over_to_a_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    filled(&dir);
    let m = manifest(5);
    let mut w = CacheWriter::open(&dir, m.clone(), ShardSplit::default(), true).unwrap();
    for i in w.pending() {
        w.write_shard(i, &[block(i, &m)]).unwrap();
    }
    // while the overwriting writer lives, readers wait for it; afterwards it hands over
    assert!(read_err(&dir).contains("being overwritten"));
    let (data, _) = w
        .into_reader()
        .unwrap()
        .read_hook("blocks.0.hook_resid_post")
        .unwrap();
    assert_eq!(data.len(), 15);
}

/// The finite-output guard: a NaN, an infinity or (in an f16 cache) a value beyond ±65504 is
/// an error naming the hook, row and dimension, and no shard is written.
#[test]
fn non_finite_activations_are_refused_naming_hook_and_row() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(4);
    let mut w = CacheWriter::open(
        &tmp.path().join("c"),
        m.clone(),
        "0/1".parse().unwrap(),
        false,
    )
    .unwrap();
    let mut b = block(1, &m);
    b[4] = f32::NAN; // row 3, dimension 1
    let e = w.write_shard(1, &[b]).unwrap_err().to_string();
    assert!(
        e.contains("blocks.0.hook_resid_post") && e.contains("row 3, dimension 1"),
        "{e}"
    );
    assert!(!tmp.path().join("c").join(shard_file(1)).exists());
    w.write_shard(1, &[block(1, &m)]).unwrap();

    let mut half = manifest(4);
    half.dtype = "f16".into();
    let mut w = CacheWriter::open(
        &tmp.path().join("h"),
        half.clone(),
        "0/1".parse().unwrap(),
        false,
    )
    .unwrap();
    let mut b = block(0, &half);
    b[0] = 70_000.0;
    let e = w.write_shard(0, &[b]).unwrap_err().to_string();
    assert!(e.contains("f16 range") && e.contains("--dtype f32"), "{e}");
}
