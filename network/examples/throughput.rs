//! Loopback throughput of the QUIC transport against a plain TCP baseline
//! with the same length-prefixed framing.
//!
//! `cargo run --release -p ordo-network --example throughput`
//!
//! For 512 B and 512 KiB frames, one endpoint sends to the other on the
//! Batches class (its queue refuses when full, so the sender backs off and
//! nothing is lost); the time runs from the first send to the last frame
//! received. Each case runs three times; the median is reported.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use ordo_network::{frame, Class, Config, Network};
use ordo_types::{Committee, Keypair, Member};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

const RUNS: usize = 3;

struct Case {
    name: &'static str,
    frame_bytes: usize,
    frames: usize,
}

const CASES: [Case; 2] = [
    Case {
        name: "512 B",
        frame_bytes: 512,
        frames: 200_000,
    },
    Case {
        name: "512 KiB",
        frame_bytes: 512 * 1024,
        frames: 1_000,
    },
];

struct Sample {
    elapsed: Duration,
    frames: usize,
    bytes: usize,
}

impl Sample {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
    fn frames_per_s(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64()
    }
}

async fn quic_run(case: &Case) -> Result<Sample> {
    let keys = [Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32])];
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let b0 = Network::bind(loopback)?;
    let b1 = Network::bind(loopback)?;
    let members = [(&keys[0], b0.local_addr()), (&keys[1], b1.local_addr())]
        .iter()
        .map(|(k, a)| Member {
            key: k.public(),
            address: *a,
            api_address: *a,
        })
        .collect();
    let committee = Arc::new(Committee::new(members)?);
    let config = Config {
        batches_queue_frames: if case.frame_bytes > 64 * 1024 {
            16
        } else {
            4096
        },
        incoming_batches_frames: 4096,
        ..Config::default()
    };
    let (n0, _inbox0) = b0.start(config.clone(), &keys[0], committee.clone())?;
    let (n1, mut inbox1) = b1.start(config, &keys[1], committee)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(n0.is_connected(1) && n1.is_connected(0)) {
        if Instant::now() > deadline {
            bail!("endpoints did not connect");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let payload = Bytes::from(vec![0xA5; case.frame_bytes]);
    let frames = case.frames;
    let start = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut bytes = 0;
        for _ in 0..frames {
            match inbox1.recv().await {
                Some(m) => bytes += m.bytes.len(),
                None => break,
            }
        }
        (bytes, start.elapsed())
    });
    let mut sent = 0;
    while sent < frames {
        match n0.send(1, Class::Batches, payload.clone()) {
            Ok(()) => sent += 1,
            Err(ordo_network::Error::QueueFull { .. }) => {
                tokio::time::sleep(Duration::from_micros(50)).await
            }
            Err(e) => return Err(e.into()),
        }
    }
    let (bytes, elapsed) = receiver.await?;
    if bytes != frames * case.frame_bytes {
        bail!(
            "received {bytes} bytes, expected {}",
            frames * case.frame_bytes
        );
    }
    n0.shutdown().await;
    n1.shutdown().await;
    Ok(Sample {
        elapsed,
        frames,
        bytes,
    })
}

async fn tcp_run(case: &Case) -> Result<Sample> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let frames = case.frames;
    let max = case.frame_bytes;
    let start = Instant::now();
    let receiver = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let mut reader = BufReader::with_capacity(256 * 1024, stream);
        let mut bytes = 0;
        for _ in 0..frames {
            match frame::read_frame(&mut reader, max).await? {
                Some(f) => bytes += f.len(),
                None => break,
            }
        }
        anyhow::Ok((bytes, start.elapsed()))
    });
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut writer = BufWriter::with_capacity(256 * 1024, stream);
    let payload = vec![0xA5; case.frame_bytes];
    let header = frame::header(payload.len(), max)?;
    for _ in 0..frames {
        writer.write_all(&header).await?;
        writer.write_all(&payload).await?;
    }
    writer.flush().await?;
    let (bytes, elapsed) = receiver.await.context("tcp receiver")??;
    Ok(Sample {
        elapsed,
        frames,
        bytes,
    })
}

fn median(mut samples: Vec<Sample>) -> Sample {
    samples.sort_by_key(|s| s.elapsed);
    samples.swap_remove(samples.len() / 2)
}

fn report(transport: &str, case: &Case, runs: &[Sample], median: &Sample) {
    let each: Vec<String> = runs
        .iter()
        .map(|s| format!("{:.0}", s.mb_per_s()))
        .collect();
    println!(
        "{transport:<5} {:>8} frames x {:<7}: median {:>8.1} MB/s {:>10.0} msg/s  (runs MB/s: {})",
        case.frames,
        case.name,
        median.mb_per_s(),
        median.frames_per_s(),
        each.join(", ")
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    println!("loopback throughput, one sender -> one receiver, median of {RUNS} runs");
    for case in &CASES {
        for transport in ["quic", "tcp"] {
            let mut runs = Vec::new();
            for _ in 0..RUNS {
                runs.push(match transport {
                    "quic" => quic_run(case).await?,
                    _ => tcp_run(case).await?,
                });
            }
            let shown: Vec<Sample> = runs
                .iter()
                .map(|s| Sample {
                    elapsed: s.elapsed,
                    frames: s.frames,
                    bytes: s.bytes,
                })
                .collect();
            report(transport, case, &shown, &median(runs));
        }
    }
    Ok(())
}
