//! MODEL_CARD.md of a trained model directory, written from its metrics.

use serde::Serialize;

use crate::folds::Grouping;
use crate::logging::count;
use crate::metrics::{MeanStd, Report};
use crate::train::fit::FitConfig;
use crate::train::metrics_file::{Cv, Metrics, Protocol};
use crate::train::Linear;

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |x| format!("{:.1} %", 100.0 * x))
}

fn mean_std(v: Option<MeanStd>) -> String {
    v.map_or("n/a".into(), |v| {
        format!("{:.1} ± {:.1} %", 100.0 * v.mean, 100.0 * v.std)
    })
}

/// A value as `metrics.json` writes it, unquoted when it is a string.
fn wire(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

const WHOLE: &str = "the whole training part";

/// How `who` ("every network") was trained, for the protocol section; `data` is what it trains on
/// without early stopping ("the whole training part").
fn training(fit: &FitConfig, who: &str, data: &str) -> String {
    let batch = if fit.batch >= Linear::FULL_BATCH {
        "full batch".to_string()
    } else {
        format!("batch {}", fit.batch)
    };
    let settings = format!(
        "{batch}, Adam {}, label smoothing {}{}",
        wire(&fit.learning_rate),
        fit.label_smoothing,
        if fit.weight_decay > 0.0 {
            format!(", L2 penalty {}", wire(&fit.weight_decay))
        } else {
            String::new()
        }
    );
    if fit.early_stopping {
        format!(
            "{who} stops early (patience {}, at most {} epochs, {settings}) on a validation split \
             carved out of the training part, grouped like the folds, and keeps the best epoch's \
             weights",
            fit.patience, fit.epochs
        )
    } else {
        format!(
            "{who} trains {} epochs on {data} ({settings}) and keeps the last",
            fit.epochs
        )
    }
}

/// What the model is: "A CNN of 2 blocks of 128 filters", or the ensemble it is.
fn description(p: &Protocol) -> String {
    let network = match p.model.blocks {
        0 => "a linear model (multinomial logistic regression)".to_string(),
        1 => format!("a CNN of one block of {} filters", p.model.filters),
        n => format!("a CNN of {n} blocks of {} filters", p.model.filters),
    };
    let linear = p.linear.map_or(0, |l| l.members);
    if p.members == 1 && linear == 0 {
        return format!("A{}", &network[1..]);
    }
    let mut s = format!(
        "An ensemble of {} ({}{network})",
        count(p.members, "network", "networks"),
        if p.members == 1 { "" } else { "each " }
    );
    if let Some(l) = p.linear.filter(|l| l.members > 0) {
        s += &format!(
            " and {} (multinomial logistic regression, L2 penalty {}), their probabilities averaged,",
            count(l.members, "linear model", "linear models"),
            wire(&l.fit.weight_decay)
        );
    }
    s
}

/// How the folds were grouped, and what that means for the figures.
fn grouping(m: &Metrics) -> String {
    let speakerless: usize = m.data.sources.iter().map(|s| s.speakerless).sum();
    if m.protocol.speaker_independent {
        "grouped by speaker: no speaker is in both training and test data".into()
    } else if m.protocol.grouping == Grouping::Speaker && speakerless > 0 {
        format!(
            "grouped by speaker where the data names one, but {speakerless} files have no speaker \
             and each counts as its own: their speakers may be in both training and test data, \
             so the figures may overstate accuracy on new speakers"
        )
    } else {
        "NOT grouped by speaker: speakers appear in training and test folds, so the figures \
         overstate accuracy on new speakers"
            .into()
    }
}

/// A short model card: data and its licences, protocol, figures, limits.
pub fn model_card(m: &Metrics) -> String {
    let p = &m.protocol;
    let cv =
        m.cv.as_ref()
            .or(m.corpus_cv.as_ref())
            .expect("train runs at least one cross-validation");
    let utt = &cv.utterance;
    let mut s = String::new();
    s += "# serd emotion model\n\n";
    s += &format!(
        "{} over openSMILE {} functionals ({}), classifying speech as anger, surprise, happiness, \
         sadness or neutral. Trained by serd {}.\n\n",
        description(p),
        wire(&p.features),
        match p.window_s {
            Some(w) => format!("{w} s windows every {} s", p.hop_s.unwrap_or(w)),
            None => "one vector per recording".into(),
        },
        m.serd_version
    );
    s += &data(m, utt);
    s += &protocol(m);
    s += &figures(m, cv);
    s += &robustness(m, cv);
    if let Some(corpora) = &m.corpus_cv {
        s += &held_out_corpora(corpora, m.cv.is_some());
    }
    s += &format!("Made with: `{}`\n\n", m.command);
    s += "## Limits\n\nActed speech from a few corpora, mostly English and German, adult speakers, \
          studio conditions: expect lower figures on spontaneous speech, other languages, noise and \
          far-field microphones. The speaker-grouped figures hold out speakers, not corpora: on \
          a corpus the model was not trained on, expect figures like the held-out corpora's (where \
          measured) and confidence that runs high (the calibration is fitted on held-out speakers \
          of the training corpora).\n";
    s
}

/// The data section: sources, classes, files that could not be used, licences.
fn data(m: &Metrics, utt: &Report) -> String {
    let mut s = String::new();
    s += "## Data\n\n| source | corpus | files | speakers |\n|---|---|---|---|\n";
    for src in m.data.sources {
        s += &format!(
            "| {} | {} | {} | {} |\n",
            wire(&src.root),
            wire(&src.kind),
            src.items,
            src.speakers
        );
    }
    s += &format!(
        "\nFiles per class in the sources: {}. ",
        wire(&m.data.counts)
    );
    s += "Labels outside the five classes were left out";
    let skipped = utt.skipped.len();
    if skipped > 0 {
        let files = if skipped == 1 { "file" } else { "files" };
        s += &format!(
            "; {skipped} {files} could not be used (unreadable, or too short for openSMILE: listed \
             in `metrics.json`), so the figures below cover {} files",
            utt.n
        );
    }
    s += ".\n\n";
    s += "**Licences.** The model is derived from the corpora above and inherits their terms: \
          RAVDESS is CC BY-NC-SA 4.0, EmoDB is free for research use only, TESS is CC BY-NC-ND \
          4.0, and other corpora have their own (mostly non-commercial) terms. The features come from openSMILE, under \
          audEERING's research licence (non-commercial). Do not use this model commercially.\n\n";
    s
}

/// The protocol section: folds, grouping, scaler, how every member was trained.
fn protocol(m: &Metrics) -> String {
    let p = &m.protocol;
    let mut s = String::new();
    s += "## Protocol\n\n";
    if m.cv.is_none() {
        s += "Each corpus held out in turn (no speaker-grouped cross-validation was run); ";
    }
    s += &format!(
        "{}-fold cross-validation, {}; {}. The scaler is fitted on each training part only; {}. \
         A file is classified by the mean of its windows' calibrated probabilities (a file \
         shorter than one window, by the functionals of all of it). The final model is trained \
         the same way on all data.\n\n",
        p.folds,
        grouping(m),
        "stratified by class",
        match p.linear.filter(|l| l.members > 0) {
            None => training(p.fit, "every network", WHOLE),
            Some(l) => format!(
                "{}; {}",
                training(
                    p.fit,
                    if p.members == 1 {
                        "the network"
                    } else {
                        "every network"
                    },
                    WHOLE
                ),
                training(
                    &l.fit,
                    "every linear model",
                    "the whole training part, validation split included"
                )
            ),
        }
    );
    s
}

/// The figures section: pooled and per-fold figures, recall per class, per corpus.
fn figures(m: &Metrics, cv: &Cv) -> String {
    let utt = &cv.utterance;
    let mut s = String::new();
    if m.cv.is_some() {
        s += "## Figures (cross-validated, speakers held out)\n\n";
    } else {
        s += "## Figures (each corpus held out, pooled)\n\n";
    }
    s += &format!(
        "| level | n | accuracy | UAR |\n|---|---|---|---|\n| utterance (pooled) | {} | {} | {} |\n| window (pooled) | {} | {} | {} |\n| utterance, per fold | | {} | {} |\n\n",
        utt.n,
        pct(utt.accuracy),
        pct(utt.uar),
        cv.window.n,
        pct(cv.window.accuracy),
        pct(cv.window.uar),
        mean_std(cv.accuracy),
        mean_std(cv.uar)
    );
    s += "Recall per class (utterance level): ";
    let recalls: Vec<String> = utt
        .recall
        .iter()
        .map(|(k, v)| format!("{} {}", k.name(), pct(*v)))
        .collect();
    s += &recalls.join(", ");
    s += ". The confusion matrix is in `confusion.png`; every figure in `metrics.json`.\n\n";
    if cv.per_corpus.len() > 1 {
        let within: Vec<String> = cv
            .per_corpus
            .iter()
            .map(|(corpus, r)| format!("{corpus} {} (n = {})", pct(r.uar), r.n))
            .collect();
        s += &format!(
            "UAR within each corpus (its held-out files, over the classes it has): {}.\n\n",
            within.join(", ")
        );
    }
    s
}

/// Each corpus held out in turn: its figures clean and under each test condition, the mean
/// over corpora, and how the calibration holds there.
fn held_out_corpora(cv: &Cv, calibrated_elsewhere: bool) -> String {
    let mut s = String::from("## Held-out corpora\n\n");
    s +=
        "Each corpus held out in turn: a model trained on the other corpora (same recipe), scored \
          on the classes the held-out corpus has (UAR over those classes; chance is 1 / classes). \
          This is the figure to expect on a voice, language and recording the model never met, \
          and it is what the bundled recipe is selected by.\n\n";
    s += "| held-out corpus | files | speakers | accuracy | UAR | ECE (file)";
    for c in &cv.conditions {
        s += &format!(" | {}", c.condition);
    }
    s += " |\n|---|---|---|---|---|---";
    s += &"|---".repeat(cv.conditions.len());
    s += "|\n";
    for f in cv.folds {
        s += &format!(
            "| {} | {} | {} | {} | {} | {}",
            f.held_out.as_deref().unwrap_or("?"),
            f.test_files,
            f.test_speakers,
            pct(f.accuracy),
            pct(f.uar),
            f.ece.map_or("n/a".into(), |e| format!("{e:.3}"))
        );
        for c in &f.conditions {
            s += &format!(" | {}", pct(c.uar));
        }
        s += " |\n";
    }
    s += &format!(
        "| **mean** | | | {} | **{}** | ",
        mean_std(cv.accuracy),
        mean_std(cv.uar)
    );
    for c in &cv.conditions {
        s += &format!(" | {}", mean_std(c.uar));
    }
    s += " |\n\n";
    if calibrated_elsewhere {
        s += "ECE: of the file probabilities with the temperatures fitted on held-out speakers \
              (the model's own), on the held-out corpus: how far its confidence can be trusted \
              on data unlike its training data. The pooled confusion matrix is in \
              `confusion-corpora.png`.\n\n";
    }
    s
}

/// Front end, augmentation, per-condition figures and calibration.
fn robustness(m: &Metrics, cv: &Cv) -> String {
    let p = &m.protocol;
    let mut s = String::new();
    s += "## Recording conditions\n\n";
    s += &match &p.front_end {
        Some(f) => format!(
            "Front end: the speech level is normalised to {} dBFS by a slow causal gain control and \
             a white noise floor at {} dBFS is added before openSMILE, in training and in use alike. ",
            wire(&f.level_dbfs),
            wire(&f.floor_dbfs)
        ),
        None => "Front end: none (openSMILE gets the audio as recorded). ".into(),
    };
    s += &match p.augment {
        n if n > 0 => format!(
            "Training used {n} augmented copies of every training file under random simulated \
             conditions (noise and babble at 0–30 dB SNR, rooms, telephone channel, gain, noise \
             floor, 44.1/48 kHz rendering).\n\n"
        ),
        _ => "Training used the recordings as they are (no augmentation).\n\n".into(),
    };
    if !cv.conditions.is_empty() {
        s += "Cross-validated figures with the held-out files under simulated conditions (noise \
              instances and rooms that no training copy had):\n\n| condition | n | accuracy | UAR |\n|---|---|---|---|\n";
        s += &format!(
            "| clean | {} | {} | {} |\n",
            cv.utterance.n,
            pct(cv.utterance.accuracy),
            pct(cv.utterance.uar)
        );
        for c in &cv.conditions {
            let u = &c.utterance;
            s += &format!(
                "| {} | {} | {} | {} |\n",
                c.condition,
                u.n,
                pct(u.accuracy),
                pct(u.uar)
            );
        }
        s += "\n";
    }
    let cal = cv.calibration;
    let (t, t_file) = (cal.temperature, cal.file_temperature);
    s += &format!(
        "Calibration: probabilities are tempered, each window's with T = {t:.2} and each \
         file's (the mean of its windows') with T = {t_file:.2}, fitted on the \
         cross-validated window and file predictions; expected calibration error (10 bins) \
         per window {:.3} before, {:.3} after; per file {:.3} before, {:.3} after \
         (`reliability.png`).\n\n",
        cal.window_before.ece,
        cal.window_after.ece,
        cal.utterance_before.ece,
        cal.utterance_after.ece,
    );
    s
}
