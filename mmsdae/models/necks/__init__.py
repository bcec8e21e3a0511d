from .mae_feature_decoder import MAEFeatureDecoder, decoder_hidden_states

__all__ = ['MAEFeatureDecoder', 'decoder_hidden_states']
