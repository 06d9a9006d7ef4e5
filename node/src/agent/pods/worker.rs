//! The pod worker: one task per pod bound to the node. It feeds the pod's
//! lifecycle with what happens (starts, exits, time, deletion), carries out
//! the effects on the container runtime, and publishes the status for the
//! reporter. It lives as long as the pod object does.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, watch};
use wasmpod_api::k8s_openapi::api::core::v1::{Container, Pod, PodStatus};

use super::api::{PodApi, pod_event};
use super::checkpoint::Checkpoint;
use super::container_spec::{self, SpecContext};
use super::reporter::{self, Desired};
use super::volumes::{self, PodVolumes, VolumeRoots};
use super::{PodUpdate, PodWorkerConfig, log_path};
use crate::agent::container_runtime::{
    ContainerHandle, ContainerRuntime, ExitStatus, PodRef, StartError,
};
use crate::agent::lifecycle::{
    ContainerKey, Effect, PodEvent, PodState, Record, Stage, pod_status,
};
use crate::agent::probes::{self, ContainerProbes, NetworkTransport, ProbeTask, ProbeUpdate};
use crate::network::PodNetwork;
use crate::network::host_ports::{HostPort, expose_all};

/// What one pod's tasks share.
struct PodContext<R, A> {
    runtime: Arc<R>,
    api: A,
    config: Arc<PodWorkerConfig>,
    pod_ref: PodRef,
    roots: VolumeRoots,
    /// Prepared on the first start, refreshed by the resync.
    volumes: Mutex<Option<PodVolumes>>,
    checkpoint: Mutex<Checkpoint>,
    /// The pod's network, attached before its first container starts and
    /// detached once nothing of the pod will run again.
    network: Mutex<Option<PodNetwork>>,
    /// The pod IP it got; still reported after the network is detached.
    pod_ip: std::sync::Mutex<Option<Ipv4Addr>>,
    /// The pod's hostPorts, open while it is attached.
    host_ports: std::sync::Mutex<Vec<HostPort>>,
}

/// Results of the worker's own tasks.
enum Internal<H> {
    Started {
        key: ContainerKey,
        result: Result<H, StartError>,
    },
    Exited {
        key: ContainerKey,
        status: ExitStatus,
    },
    /// A probe of run `run` of a container found something out.
    Probed {
        key: ContainerKey,
        run: u32,
        update: ProbeUpdate,
    },
}

struct Worker<R: ContainerRuntime, A: PodApi> {
    ctx: Arc<PodContext<R, A>>,
    pod: Arc<Pod>,
    state: Option<PodState>,
    handles: HashMap<ContainerKey, Arc<R::Handle>>,
    /// The probes of running containers; dropping one stops them.
    probes: HashMap<ContainerKey, ProbeTask>,
    tx: mpsc::UnboundedSender<Internal<R::Handle>>,
    rx: mpsc::UnboundedReceiver<Internal<R::Handle>>,
    desired: watch::Sender<Desired>,
    /// The status last published: what conditions' transition times and
    /// "has anything changed" are judged against.
    status: PodStatus,
    /// The grace period of the deletion request passed to the lifecycle.
    deletion_grace: Option<Duration>,
    /// The pod object is gone from the API: nothing more is written.
    removed: bool,
    /// The pod's network was detached and its IP given back.
    detached: bool,
}

/// Runs the worker of `pod` until the pod is removed from the API (a
/// [`PodUpdate::Removed`] or the sender dropped) and nothing of it runs.
pub async fn run<R: ContainerRuntime, A: PodApi>(
    runtime: Arc<R>,
    api: A,
    config: Arc<PodWorkerConfig>,
    pod: Pod,
    mut updates: mpsc::UnboundedReceiver<PodUpdate>,
) {
    let pod_ref = PodRef {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    };
    let pod_dir = super::pod_dir(&config.data_dir, &pod_ref.uid);
    let checkpoint = Checkpoint::load(&pod_dir).await;
    let now = config.clock.now();
    let state = PodState::adopt(&pod, config.backoff, now, &checkpoint.checkpointed());
    let written = pod.status.clone();
    let (desired, desired_rx) = watch::channel(Desired {
        status: written.clone(),
        delete: false,
    });
    tokio::spawn(reporter::run(
        api.clone(),
        pod_ref.clone(),
        written.clone(),
        desired_rx,
    ));
    let ctx = Arc::new(PodContext {
        runtime,
        api,
        roots: VolumeRoots {
            pod_dir,
            claims_dir: config.data_dir.join("volumes"),
        },
        config,
        pod_ref,
        volumes: Mutex::new(None),
        checkpoint: Mutex::new(checkpoint),
        network: Mutex::new(None),
        pod_ip: std::sync::Mutex::new(None),
        host_ports: std::sync::Mutex::default(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let mut worker = Worker {
        ctx,
        pod: Arc::new(pod),
        state: Some(state),
        handles: HashMap::new(),
        probes: HashMap::new(),
        tx,
        rx,
        desired,
        status: written.unwrap_or_default(),
        deletion_grace: None,
        removed: false,
        detached: false,
    };
    // A pod being deleted must not start anything, even once.
    let first = worker.deletion_event().unwrap_or(PodEvent::Tick);
    worker.step(first);
    worker.run(&mut updates).await;
}

impl<R: ContainerRuntime, A: PodApi> Worker<R, A> {
    fn state(&self) -> &PodState {
        // The state is only taken out for the duration of a step.
        self.state
            .as_ref()
            .unwrap_or_else(|| unreachable!("state is restored after each step"))
    }

    async fn run(&mut self, updates: &mut mpsc::UnboundedReceiver<PodUpdate>) {
        let resync_every = self.ctx.config.volume_resync;
        let mut resync =
            tokio::time::interval_at(tokio::time::Instant::now() + resync_every, resync_every);
        let projections = volumes::has_projections(&self.pod);
        loop {
            if self.removed && self.state().stage == Stage::Deleted {
                break;
            }
            let wake = self.state().next_wakeup();
            let running = self.state().stage == Stage::Running;
            tokio::select! {
                update = updates.recv(), if !self.removed => match update {
                    Some(PodUpdate::Changed(pod)) => {
                        self.pod = Arc::new(*pod);
                        if let Some(event) = self.deletion_event() {
                            self.step(event);
                        }
                    }
                    Some(PodUpdate::Removed) | None => {
                        self.removed = true;
                        self.step(PodEvent::DeletionRequested { grace: Duration::ZERO });
                    }
                },
                Some(msg) = self.rx.recv() => self.internal(msg),
                () = sleep_until(wake) => self.step(PodEvent::Tick),
                _ = resync.tick(), if projections && running => self.refresh_volumes(),
            }
        }
        self.detach();
        volumes::remove_pod_dir(&self.ctx.roots.pod_dir).await;
        tracing::debug!(pod = %self.ctx.pod_ref.name, "pod worker done");
    }

    /// The deletion request the pod carries, if it is new or shorter than
    /// the one already passed on.
    fn deletion_event(&mut self) -> Option<PodEvent> {
        self.pod.metadata.deletion_timestamp.as_ref()?;
        let seconds = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        let grace = Duration::from_secs(seconds.max(0).unsigned_abs());
        if self.deletion_grace.is_some_and(|g| g <= grace) {
            return None;
        }
        self.deletion_grace = Some(grace);
        Some(PodEvent::DeletionRequested { grace })
    }

    fn internal(&mut self, msg: Internal<R::Handle>) {
        match msg {
            Internal::Started {
                key,
                result: Ok(handle),
            } => {
                let handle = Arc::new(handle);
                let image_id = handle.image_id();
                let waiter = Arc::clone(&handle);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let status = waiter.wait().await;
                    let _ = tx.send(Internal::Exited { key, status });
                });
                self.handles.insert(key, handle);
                self.step(PodEvent::Started { key, image_id });
                self.start_probes(key);
            }
            Internal::Started {
                key,
                result: Err(error),
            } => {
                tracing::info!(pod = %self.ctx.pod_ref.name, ?key, reason = error.reason(), %error, "container did not start");
                self.step(PodEvent::StartFailed { key, error });
            }
            Internal::Exited { key, status } => {
                self.handles.remove(&key);
                self.probes.remove(&key);
                self.step(PodEvent::Exited { key, status });
            }
            Internal::Probed { key, run, update } => {
                self.step(PodEvent::Probed { key, run, update });
            }
        }
    }

    /// Runs one lifecycle step, carries out its effects and publishes the
    /// resulting status.
    fn step(&mut self, event: PodEvent) {
        let now = self.ctx.config.clock.now();
        let Some(state) = self.state.take() else {
            return;
        };
        let (state, effects) = state.step(now, event);
        self.state = Some(state);
        for effect in effects {
            self.effect(effect);
        }
        if matches!(self.state().stage, Stage::Finished | Stage::Deleted) {
            self.detach();
        }
        if self.removed {
            return;
        }
        let pod_ip = self.ctx.pod_ip().map(|ip| ip.to_string());
        let status = pod_status(
            self.state(),
            &self.pod,
            &self.status,
            &self.ctx.config.host,
            pod_ip.as_deref(),
            now.wall,
        );
        if status != self.status {
            self.status = status.clone();
            self.desired.send_modify(|d| d.status = Some(status));
        }
    }

    /// Detaches the pod from the node's network and gives its IP back,
    /// once nothing of it runs or will run (the IP stays in its status).
    fn detach(&mut self) {
        if self.detached {
            return;
        }
        self.detached = true;
        let Some(networking) = self.ctx.config.network.clone() else {
            return;
        };
        let ctx = Arc::clone(&self.ctx);
        tokio::spawn(async move {
            ctx.host_ports
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            ctx.network.lock().await.take();
            networking.release(&ctx.pod_ref.uid);
        });
    }

    fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::Start(key) => self.start(key),
            Effect::Terminate(key) => {
                if let Some(h) = self.handles.get(&key) {
                    h.terminate();
                }
            }
            Effect::Kill(key) => {
                if let Some(h) = self.handles.get(&key) {
                    h.kill();
                }
            }
            Effect::DeletePod => {
                if !self.removed {
                    self.desired.send_modify(|d| d.delete = true);
                }
            }
            Effect::Record(record) => self.record(record),
        }
    }

    fn start(&mut self, key: ContainerKey) {
        let attempt = self.state().container(key).map_or(0, |c| c.runs);
        let ctx = Arc::clone(&self.ctx);
        let pod = Arc::clone(&self.pod);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = start_container(&ctx, &pod, key, attempt).await;
            // A worker that went away meanwhile cannot stop this container.
            if let Err(mpsc::error::SendError(Internal::Started {
                result: Ok(orphan), ..
            })) = tx.send(Internal::Started { key, result })
            {
                orphan.kill();
            }
        });
    }

    /// Starts the probes of a container that has just started, over the
    /// pod's network (none: every probe is refused).
    fn start_probes(&mut self, key: ContainerKey) {
        let ContainerKey::App(_) = key else {
            return;
        };
        let Some(container) = container_of(&self.pod, key) else {
            return;
        };
        let container_probes = ContainerProbes::of(container);
        if container_probes.is_empty() {
            return;
        }
        let run = self.state().container(key).map_or(0, |c| c.runs);
        let ctx = Arc::clone(&self.ctx);
        let tx = self.tx.clone();
        let task = ProbeTask::spawn(async move {
            let network = ctx.network.lock().await.clone();
            let report = move |update| tx.send(Internal::Probed { key, run, update }).is_ok();
            probes::run(container_probes, NetworkTransport::new(network), report).await;
        });
        self.probes.insert(key, task);
    }

    fn record(&self, record: Record) {
        if self.removed {
            return;
        }
        let event = pod_event(
            &self.ctx.pod_ref,
            &self.ctx.config.node_name,
            &record,
            self.ctx.config.clock.now().wall,
        );
        let api = self.ctx.api.clone();
        tokio::spawn(async move {
            if let Err(e) = api.create_event(&event).await {
                tracing::debug!(error = %e, "recording an event");
            }
        });
    }

    /// Rewrites the pod's ConfigMap, Secret and downward API files from the
    /// current objects, once volumes exist.
    fn refresh_volumes(&self) {
        let ctx = Arc::clone(&self.ctx);
        let pod = Arc::clone(&self.pod);
        tokio::spawn(async move {
            let mut volumes = ctx.volumes.lock().await;
            if volumes.is_none() {
                return;
            }
            let spec_ctx = spec_context(&ctx, &pod);
            match volumes::prepare(&ctx.api, &spec_ctx, &ctx.roots).await {
                Ok(fresh) => *volumes = Some(fresh),
                Err(e) => tracing::warn!(pod = %ctx.pod_ref.name, error = %e, "refreshing volumes"),
            }
        });
    }
}

impl<R: ContainerRuntime, A: PodApi> Drop for Worker<R, A> {
    /// A worker stopped before its pod was removed (the node shuts down)
    /// takes its containers with it, as they would die with the process.
    fn drop(&mut self) {
        for handle in self.handles.values() {
            handle.kill();
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl<R, A> PodContext<R, A> {
    fn pod_ip(&self) -> Option<Ipv4Addr> {
        *self.pod_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pod's network, attached on the first call. A pod adopted after a
/// node restart asks for the IP it reported before.
async fn pod_network<R, A: PodApi>(
    ctx: &PodContext<R, A>,
    pod: &Pod,
) -> Result<Option<PodNetwork>, StartError> {
    let Some(networking) = ctx.config.network.as_ref() else {
        return Ok(None);
    };
    let mut network = ctx.network.lock().await;
    if let Some(existing) = network.as_ref() {
        return Ok(Some(existing.clone()));
    }
    let reported = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    let preferred = ctx.pod_ip().or(reported);
    let attached = networking.attach(&ctx.api, &ctx.pod_ref, preferred).await?;
    *ctx.pod_ip.lock().unwrap_or_else(PoisonError::into_inner) = Some(attached.ip());
    *network = Some(attached.clone());
    let node_ip = ctx
        .config
        .host
        .host_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok());
    *ctx.host_ports
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = expose_all(
        &attached,
        node_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        &super::host_ports::host_port_specs(pod),
    );
    Ok(Some(attached))
}

fn spec_context<'a, R, A>(ctx: &'a PodContext<R, A>, pod: &'a Pod) -> SpecContext<'a> {
    SpecContext {
        pod,
        pod_ref: &ctx.pod_ref,
        host_ip: ctx.config.host.host_ip.as_deref(),
        node_cpu_millis: ctx.config.node_cpu_millis,
        node_memory_bytes: ctx.config.node_memory_bytes,
    }
}

fn container_of(pod: &Pod, key: ContainerKey) -> Option<&Container> {
    let spec = pod.spec.as_ref()?;
    match key {
        ContainerKey::Init(i) => spec.init_containers.as_ref()?.get(i),
        ContainerKey::App(i) => spec.containers.get(i),
    }
}

/// Prepares volumes, resolves the spec, records the start and starts the
/// container. The record is taken back if the runtime refuses the start.
async fn start_container<R: ContainerRuntime, A: PodApi>(
    ctx: &PodContext<R, A>,
    pod: &Pod,
    key: ContainerKey,
    attempt: u32,
) -> Result<R::Handle, StartError> {
    let container = container_of(pod, key).ok_or_else(|| {
        StartError::CreateContainerConfig(format!("no container {key:?} in the pod spec"))
    })?;
    let spec_ctx = spec_context(ctx, pod);
    let mounts = {
        let mut volumes = ctx.volumes.lock().await;
        if volumes.is_none() {
            *volumes = Some(volumes::prepare(&ctx.api, &spec_ctx, &ctx.roots).await?);
        }
        match volumes.as_ref() {
            Some(v) => v.mounts(container)?,
            None => Vec::new(),
        }
    };
    let log = log_path(
        &ctx.config.data_dir,
        &ctx.pod_ref.uid,
        &container.name,
        attempt,
    );
    create_parent(&log).await?;
    let network = pod_network(ctx, pod).await?;
    let mut spec =
        container_spec::build(&ctx.api, &spec_ctx, container, attempt, mounts, log).await?;
    spec.network = network;
    // Each container has its own entry, so starts of a pod's containers
    // run side by side and only the record is serialised.
    ctx.checkpoint
        .lock()
        .await
        .record(&container.name, attempt + 1)
        .await
        .map_err(|e| StartError::CreateContainer(format!("recording the start: {e}")))?;
    let started = ctx.runtime.start(spec).await;
    if started.is_err()
        && let Err(e) = ctx
            .checkpoint
            .lock()
            .await
            .record(&container.name, attempt)
            .await
    {
        tracing::warn!(error = %e, "taking back a start record");
    }
    started
}

async fn create_parent(path: &std::path::Path) -> Result<(), StartError> {
    let Some(dir) = path.parent().map(PathBuf::from) else {
        return Ok(());
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| StartError::CreateContainer(format!("creating {}: {e}", dir.display())))
}
