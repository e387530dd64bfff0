//! `probe data fetch wahl-o-mat <year> <election>`: downloads an election from the public
//! qual-o-mat-data repository (needs internet and `curl`), checks that it parses, and stores it
//! under `data/wahl-o-mat/<year>-<election>/`.
//!
//! `probe data audit <election>`: lists every party name or self-reference the masking leaves
//! in the texts probe prompts are built from.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use probe_data::wahl_o_mat::Election;

const RAW_BASE: &str = "https://raw.githubusercontent.com/gockelhahn/qual-o-mat-data/master/data";
const FILES: [&str; 6] = [
    "statement.json",
    "party.json",
    "answer.json",
    "opinion.json",
    "comment.json",
    "overview.json",
];

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Download one Wahl-o-Mat election, e.g. `probe data fetch wahl-o-mat 2021 deutschland`.
    Fetch {
        /// Dataset: wahl-o-mat.
        dataset: String,
        /// Year, e.g. 2021.
        year: u32,
        /// Election name as in the repository, e.g. deutschland, europa, bayern.
        election: String,
        /// Where to store it (default data/wahl-o-mat/<year>-<election>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List, per party, every party name or self-reference left after masking in the
    /// statements and justifications its probe prompts are built from; fails if any remain.
    Audit {
        /// An election directory (qual-o-mat layout), e.g. data/wahl-o-mat/2025-deutschland.
        election: PathBuf,
        /// Parties, comma-separated (aliases accepted); default: the six Bundestag parties.
        #[arg(long, value_delimiter = ',')]
        parties: Vec<String>,
        /// Also write every finding as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> Result<()> {
    let (dataset, year, election, out) = match args.what {
        What::Fetch {
            dataset,
            year,
            election,
            out,
        } => (dataset, year, election, out),
        What::Audit {
            election,
            parties,
            json,
        } => return audit(&election, &parties, json.as_deref()),
    };
    if dataset != "wahl-o-mat" {
        bail!("unknown dataset `{dataset}` (known: wahl-o-mat)");
    }
    if election.is_empty()
        || !election
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("election `{election}` must be a plain name such as deutschland or europa");
    }
    let dest = out.unwrap_or_else(|| PathBuf::from(format!("data/wahl-o-mat/{year}-{election}")));
    let tmp = dest.with_file_name(format!(
        ".{}.partial",
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for file in FILES {
        let url = format!("{RAW_BASE}/{year}/{election}/{file}");
        eprintln!("fetching {url}");
        let status = Command::new("curl")
            .args(["-fsSL", "--retry", "2", "-o"])
            .arg(tmp.join(file))
            .arg(&url)
            .status()
            .context("running curl (is it installed?)")?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&tmp);
            bail!("downloading {url} failed (curl exit code {}); check the year/election names and your internet connection", status.code().unwrap_or(-1));
        }
    }
    let parsed = Election::load(&tmp)
        .with_context(|| format!("the downloaded {year}/{election} does not parse"))?;
    if dest.exists() {
        std::fs::remove_dir_all(&dest).with_context(|| format!("replacing {}", dest.display()))?;
    }
    std::fs::rename(&tmp, &dest).with_context(|| format!("moving into {}", dest.display()))?;
    eprintln!(
        "stored {} ({} statements, {} parties) in {}",
        parsed.title.unwrap_or_else(|| format!("{year} {election}")),
        parsed.statements.len(),
        parsed.parties.len(),
        dest.display()
    );
    Ok(())
}

fn audit(dir: &std::path::Path, parties: &[String], json: Option<&std::path::Path>) -> Result<()> {
    let election = Election::load(dir)?;
    let parties = election.select_parties(parties)?;
    let found = probe_data::probe_prompts::audit_prompts(&election, &parties, "[MASK]");
    for p in &parties {
        let name = Election::display_name(p);
        let mine: Vec<_> = found.iter().filter(|l| l.party == name).collect();
        println!("{name}: {} left", mine.len());
        for l in mine {
            println!(
                "  statement {} {}: `{}` names {} in \"…{}…\"",
                l.statement, l.field, l.text, l.names, l.context
            );
        }
    }
    if let Some(path) = json {
        probe_cache::write_atomic(path, serde_json::to_string_pretty(&found)?.as_bytes())?;
    }
    if !found.is_empty() {
        bail!(
            "{} mention(s) of a party remain after masking in {}",
            found.len(),
            dir.display()
        );
    }
    println!(
        "no party name or self-reference remains in {}",
        dir.display()
    );
    Ok(())
}
