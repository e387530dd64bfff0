//! The value-vector chance test can reach every verdict on a real model's value vectors
//! (SmolLM2-135M, layers 20–23): a direction planted on a real value vector is above chance,
//! directions that know nothing are not (at about the test's level), and a null too small to
//! give p < 0.05 answers "undetermined" — the pooled 3-seed null of earlier versions could
//! only ever say "no".

use probe_test_support as common;

use probe_latent::null::{party_chance_tests, random_directions, Verdict};
use probe_latent::PartyDirection;
use probe_lm::burn::tensor::{Device, Tensor};
use probe_lm::{LoadOptions, Model};

use common::smollm2_gguf as smollm2;

fn party(name: &str, direction: Vec<f32>) -> PartyDirection {
    PartyDirection {
        party: name.into(),
        source: "shared".into(),
        direction,
    }
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

#[test]
fn planted_random_and_too_small_nulls_reach_their_verdicts() {
    let Some(gguf) = smollm2() else { return };
    let model = Model::load(&gguf, &Device::flex(), LoadOptions::default()).unwrap();
    let tf = &model.transformer;
    let value_vectors: Vec<(usize, Tensor<2>)> = (20..24)
        .map(|l| (l, tf.value_vectors(l).unwrap()))
        .collect();
    let device = tf.device();
    let hidden = value_vectors[0].1.dims()[1];
    // planted: a real value vector (layer 22, neuron 100) plus isotropic noise of equal norm
    let row = value_vectors[2]
        .1
        .clone()
        .slice([100..101, 0..hidden])
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    let noise = &random_directions(1, hidden, 99)[0];
    let planted = unit(unit(row).iter().zip(noise).map(|(a, b)| a + b).collect());
    // 30 parties that know nothing: random directions
    let know_nothing = random_directions(30, hidden, 1234);
    let mut parties = vec![party("planted", planted)];
    parties.extend(
        know_nothing
            .iter()
            .enumerate()
            .map(|(i, d)| party(&format!("random{i}"), d.clone())),
    );
    // each party's "label-shuffled probes": directions that know nothing, 20 seeds (smallest
    // p 1/21 < 0.05)
    let null_for = |seeds: usize, seed: u64| -> Vec<Vec<Vec<f32>>> {
        (0..seeds)
            .map(|s| random_directions(parties.len(), hidden, seed + s as u64))
            .collect()
    };
    let k = 20;
    let tests = party_chance_tests(
        &parties,
        &null_for(20, 10_000),
        &value_vectors,
        k,
        200,
        &device,
    )
    .unwrap();
    let planted_test = &tests[0];
    assert_eq!(planted_test.verdict, Verdict::Above, "{planted_test:?}");
    assert!(planted_test.shuffled.as_ref().unwrap().p < 0.05);
    assert_eq!(
        planted_test.shuffled.as_ref().unwrap().n,
        20,
        "each party's own null"
    );
    // directions that know nothing are above chance at about the test's rate (≤ 5 % per
    // null, both required): allow 3 of 30
    let above = tests[1..]
        .iter()
        .filter(|t| t.verdict == Verdict::Above)
        .count();
    let not_above = tests[1..]
        .iter()
        .filter(|t| t.verdict == Verdict::NotAbove)
        .count();
    assert!(above <= 3, "{above} of 30 random directions above chance");
    assert_eq!(
        above + not_above,
        30,
        "a null of 20 and one of 200 always decide"
    );
    // three seeds: the planted direction is far out, but the test cannot say so
    let small = party_chance_tests(
        &parties[..1],
        &null_for(3, 20_000)
            .into_iter()
            .map(|seed| seed[..1].to_vec())
            .collect::<Vec<_>>(),
        &value_vectors,
        k,
        200,
        &device,
    )
    .unwrap();
    assert_eq!(small[0].verdict, Verdict::Undetermined, "{:?}", small[0]);
    assert_eq!(small[0].shuffled.as_ref().unwrap().p, 0.25);
    // and a null that can decide but is not beaten: a random party against random nulls
    assert!(tests[1..]
        .iter()
        .any(|t| t.shuffled.as_ref().unwrap().p > 0.5));
}
