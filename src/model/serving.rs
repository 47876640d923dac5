//! The models in service, as others see them: the consumer loop owns the swaps (it swaps
//! between batches) and publishes each version here, so that the REST twin scores with the
//! same version the stream does.

use std::sync::{Arc, RwLock};

use super::Model;

/// A shared view of the serving models, the default first. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Serving(Arc<RwLock<Vec<Arc<Model>>>>);

impl Serving {
    /// The models serving at start, the default first.
    pub fn new(models: Vec<Arc<Model>>) -> Self {
        assert!(!models.is_empty(), "a default model serves");
        Serving(Arc::new(RwLock::new(models)))
    }

    /// The version of model `name` serving now (of the default model without a name).
    pub fn get(&self, name: Option<&str>) -> Option<Arc<Model>> {
        let models = self.0.read().unwrap_or_else(|e| e.into_inner());
        match name {
            None => models.first().cloned(),
            Some(name) => models.iter().find(|m| m.metadata.name == name).cloned(),
        }
    }

    /// The default model's version serving now.
    pub fn default_model(&self) -> Arc<Model> {
        self.get(None).expect("a default model serves")
    }

    /// The names of the models serving, the default first.
    pub fn names(&self) -> Vec<String> {
        let models = self.0.read().unwrap_or_else(|e| e.into_inner());
        models.iter().map(|m| m.metadata.name.clone()).collect()
    }

    /// Publishes `model` as the version of its name now serving.
    pub fn publish(&self, model: Arc<Model>) {
        let mut models = self.0.write().unwrap_or_else(|e| e.into_inner());
        match models
            .iter_mut()
            .find(|m| m.metadata.name == model.metadata.name)
        {
            Some(slot) => *slot = model,
            None => models.push(model),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_version_replaces_its_name_and_the_default_stays_first() {
        let bundled = Arc::new(Model::open(None).unwrap());
        let serving = Serving::new(vec![bundled.clone()]);
        let mut other = (*bundled).clone();
        other.metadata.name = "other".into();
        serving.publish(Arc::new(other));
        let mut next = (*bundled).clone();
        next.metadata.version = "2".into();
        serving.publish(Arc::new(next));
        assert_eq!(serving.names(), ["breast-cancer", "other"]);
        assert_eq!(serving.default_model().metadata.version, "2");
        assert_eq!(serving.get(Some("other")).unwrap().metadata.name, "other");
        assert!(serving.get(Some("missing")).is_none());
    }
}
