//! `probe.Model`: a loaded checkpoint with TransformerLens-style methods.

use std::sync::Mutex;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use probe::{Logits, ModelSpec, Reduce, RunWithCacheOptions};
use probe_lm::GenerateParams;

use crate::{blocking, to_py_err};

/// A decoder LLM loaded from a GGUF file or an HF checkpoint directory.
///
/// `Model(path, device="cpu", dtype="native", tokenizer=None, blocks=None)`: `dtype="native"`
/// keeps a GGUF's quantization (computing in f32), `"f32"` dequantizes; `blocks=n` loads
/// blocks 0..n only and no head (enough for hooks before block n; no logits, no generate).
#[pyclass(module = "probe", frozen)]
pub struct Model {
    inner: probe_lm::Model,
    spec: ModelSpec,
    last_timing: Mutex<Option<probe::run_with_cache::Timing>>,
}

/// Prompts as token ids: a string, a list of strings, or a list of lists of token ids.
fn inputs(
    model: &probe_lm::Model,
    prompts: &Bound<'_, PyAny>,
    chat: bool,
) -> PyResult<Vec<Vec<u32>>> {
    if let Ok(text) = prompts.cast::<PyString>() {
        let texts = vec![text.to_cow()?.into_owned()];
        return probe::tokenize(model, &texts, chat).map_err(to_py_err);
    }
    let list = prompts.try_iter().map_err(|_| {
        PyValueError::new_err(
            "prompts: give a string, a list of strings or a list of token-id lists",
        )
    })?;
    let mut out = Vec::new();
    for item in list {
        let item = item?;
        if let Ok(text) = item.cast::<PyString>() {
            let texts = vec![text.to_cow()?.into_owned()];
            out.extend(probe::tokenize(model, &texts, chat).map_err(to_py_err)?);
        } else {
            let ids: Vec<u32> = item.extract().map_err(|_| {
                PyValueError::new_err("prompts: each item must be a string or a list of token ids")
            })?;
            out.push(ids);
        }
    }
    Ok(out)
}

fn dtype_of(text: &str) -> PyResult<probe::DtypeChoice> {
    text.parse()
        .map_err(|e: probe_lm::Error| PyValueError::new_err(e.to_string()))
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (path, device="cpu", dtype="native", tokenizer=None, blocks=None, fast_decode=false))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        device: &str,
        dtype: &str,
        tokenizer: Option<std::path::PathBuf>,
        blocks: Option<usize>,
        fast_decode: bool,
    ) -> PyResult<Self> {
        let spec = ModelSpec {
            path,
            device: device
                .parse()
                .map_err(|e: probe_lm::Error| PyValueError::new_err(e.to_string()))?,
            tokenizer,
            dtype: dtype_of(dtype)?,
            fast_decode,
            adapter: None,
            merge_adapter: false,
        };
        let inner = blocking::run(py, || spec.load_blocks(blocks))?;
        Ok(Model {
            inner,
            spec,
            last_timing: Mutex::new(None),
        })
    }

    /// The checkpoint's name (file stem or directory name), as in output paths.
    #[getter]
    fn name(&self) -> String {
        self.spec.name()
    }

    #[getter]
    fn path(&self) -> String {
        self.spec.path.display().to_string()
    }

    /// Number of transformer blocks (L).
    #[getter]
    fn n_layers(&self) -> usize {
        self.inner.config().num_layers
    }

    /// Width of the residual stream.
    #[getter]
    fn d_model(&self) -> usize {
        self.inner.config().hidden_size
    }

    /// The model's configuration as a dict (architecture, sizes, rope, special ids).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(self.inner.config()).map_err(|e| to_py_err(e.into()))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// Token ids of one text (`chat=True` wraps it as a user turn in the chat template).
    #[pyo3(signature = (text, chat=false))]
    fn to_tokens<'py>(
        &self,
        py: Python<'py>,
        text: String,
        chat: bool,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let ids = probe::tokenize(&self.inner, &[text], chat).map_err(to_py_err)?;
        let ids: Vec<i64> = ids[0].iter().map(|&t| t as i64).collect();
        Ok(PyArray1::from_vec(py, ids))
    }

    /// The tokens of one text (or of a list of ids) as strings, one per token.
    #[pyo3(signature = (text, chat=false))]
    fn to_str_tokens(&self, text: &Bound<'_, PyAny>, chat: bool) -> PyResult<Vec<String>> {
        let ids: Vec<u32> = match text.cast::<PyString>() {
            Ok(s) => probe::tokenize(&self.inner, &[s.to_cow()?.into_owned()], chat)
                .map_err(to_py_err)?
                .remove(0),
            Err(_) => text.extract()?,
        };
        let tok = self.inner.tokenizer().map_err(|e| to_py_err(e.into()))?;
        ids.iter()
            .map(|&id| tok.decode(&[id], false).map_err(|e| to_py_err(e.into())))
            .collect()
    }

    /// Decodes token ids to text.
    #[pyo3(signature = (ids, skip_special=true))]
    fn to_string(&self, ids: Vec<u32>, skip_special: bool) -> PyResult<String> {
        let tok = self.inner.tokenizer().map_err(|e| to_py_err(e.into()))?;
        tok.decode(&ids, skip_special)
            .map_err(|e| to_py_err(e.into()))
    }

    /// Runs prompts and returns the hooked activations as a dict of numpy arrays:
    /// `{"blocks.18.hook_resid_post": float32 [n, d] (reduce="last"/"mean") or [n, seq, d]
    /// (reduce=None, left-padded), "input_ids": int64 [n, seq], "attention_mask": ...}`,
    /// and `"logits"` with `logits="last"` or `"all"`.
    #[pyo3(signature = (prompts, hooks="blocks.{0.6L..0.9L}.hook_resid_post", reduce=None, logits=None, batch_size=16, chat=false))]
    #[allow(
        clippy::too_many_arguments,
        reason = "a Python signature: one keyword argument each, as Python users call it"
    )]
    fn run_with_cache<'py>(
        &self,
        py: Python<'py>,
        prompts: &Bound<'py, PyAny>,
        hooks: &str,
        reduce: Option<&str>,
        logits: Option<&str>,
        batch_size: usize,
        chat: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let options = RunWithCacheOptions {
            hooks: hooks.to_string(),
            reduce: match reduce {
                None => Reduce::None,
                Some(r) => r
                    .parse()
                    .map_err(|e: anyhow::Error| PyValueError::new_err(e.to_string()))?,
            },
            logits: match logits {
                None | Some("none") => Logits::None,
                Some("last") => Logits::Last,
                Some("all") => Logits::All,
                Some(other) => {
                    return Err(PyValueError::new_err(format!(
                        "logits must be None, \"last\" or \"all\", not {other:?}"
                    )))
                }
            },
            batch_size,
        };
        let ids = inputs(&self.inner, prompts, chat)?;
        let model = &self.inner;
        let acts = blocking::run(py, || probe::run_with_cache(model, &ids, &options))?;
        *self.last_timing.lock().unwrap_or_else(|e| e.into_inner()) = Some(acts.timing);
        let out = PyDict::new(py);
        let (n, len) = (acts.n_prompts, acts.max_len);
        out.set_item(
            "input_ids",
            PyArray1::from_vec(py, acts.input_ids).reshape([n, len])?,
        )?;
        out.set_item(
            "attention_mask",
            PyArray1::from_vec(py, acts.attention_mask).reshape([n, len])?,
        )?;
        for (name, t) in acts.tensors {
            // the array owns the Rust buffer: no copy; reshape of a contiguous array is a view
            let array = PyArray1::from_vec(py, t.data).reshape(t.shape)?;
            out.set_item(name, array)?;
        }
        Ok(out)
    }

    /// Throughput of the last `run_with_cache`: tokens, prompts, forward_seconds,
    /// tokens_per_second, steady_tokens_per_second.
    #[getter]
    fn last_timing<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let timing = *self.last_timing.lock().unwrap_or_else(|e| e.into_inner());
        timing
            .map(|t| {
                let d = PyDict::new(py);
                d.set_item("tokens", t.tokens)?;
                d.set_item("prompts", t.prompts)?;
                d.set_item("forward_seconds", t.forward_seconds)?;
                d.set_item("tokens_per_second", t.tokens_per_second)?;
                d.set_item("steady_tokens_per_second", t.steady_tokens_per_second)?;
                Ok(d)
            })
            .transpose()
    }

    /// Continues prompts with a KV cache (greedy at temperature 0, else sampled with the
    /// seed). A string gives a string; a list gives a list.
    #[pyo3(signature = (prompts, max_new_tokens=32, temperature=0.0, top_p=1.0, top_k=0, seed=0, stop=Vec::new(), chat=false))]
    #[allow(
        clippy::too_many_arguments,
        reason = "a Python signature: one keyword argument each, as Python users call it"
    )]
    fn generate<'py>(
        &self,
        py: Python<'py>,
        prompts: &Bound<'py, PyAny>,
        max_new_tokens: usize,
        temperature: f32,
        top_p: f32,
        top_k: usize,
        seed: u64,
        stop: Vec<String>,
        chat: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let single = prompts.is_instance_of::<PyString>();
        let params = GenerateParams {
            max_new_tokens,
            temperature,
            top_p,
            top_k,
            seed,
            stop,
            ignore_eos: false,
        };
        params
            .check()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let ids = inputs(&self.inner, prompts, chat)?;
        let model = &self.inner;
        let texts: Vec<String> = blocking::run(py, || {
            let tok = model.tokenizer()?;
            let bar = probe::progress::progress_bar(max_new_tokens as u64, "generating");
            let gens = probe_lm::generate(&model.transformer, tok, &ids, &params, |n| {
                bar.set_position(n as u64)
            })?;
            bar.finish_and_clear();
            Ok(gens.into_iter().map(|g| g.text).collect())
        })?;
        if single {
            Ok(PyString::new(py, &texts[0]).into_any())
        } else {
            Ok(PyList::new(py, texts)?.into_any())
        }
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "Model({:?}, {} blocks, d_model {}, device {})",
            self.spec.path.display().to_string(),
            c.num_layers,
            c.hidden_size,
            self.spec.device
        )
    }
}
