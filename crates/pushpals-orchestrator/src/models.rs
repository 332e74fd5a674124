//! Clients for the models named in the settings.

use crate::settings::Settings;
use pushpals_agent::ModelClient;

/// A client for the named model (`None`: the worker model); an error
/// names a model the settings do not have.
pub(crate) fn model_client(settings: &Settings, name: Option<&str>) -> Result<ModelClient, String> {
    let name = name.unwrap_or(&settings.agent.worker_model);
    let config =
        settings.models.get(name).cloned().ok_or_else(|| {
            pushpals_agent::ProviderError::UnknownModel(name.to_owned()).to_string()
        })?;
    ModelClient::new(name, config).map_err(|e| e.to_string())
}
