use tower::Layer;

use super::InjectService;
use crate::AutoReload;

/// Adds the client script to HTML responses; see the module docs for when.
///
/// Made by [`AutoReload::layer`]. Holds only the [`AutoReload`] handle.
#[derive(Clone, Debug)]
pub struct InjectLayer {
    reload: AutoReload,
}

impl InjectLayer {
    pub(crate) fn new(reload: AutoReload) -> Self {
        Self { reload }
    }
}

impl<S> Layer<S> for InjectLayer {
    type Service = InjectService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectService::new(inner, self.reload.clone())
    }
}
