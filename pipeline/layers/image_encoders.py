"""Image encoders: a CNN turns images (uint8 or float 0..255) into a grid of feature vectors.

Backbones: SqueezeNet v1.1 (ImageNet weights from a local file or its public release), the
`keras.applications` MobileNetV2/V3, EfficientNetB0 and ResNet50 (`weights="imagenet"` downloads), and a
small CNN trained from scratch. Each backbone's own preprocessing runs inside the layer, in Keras ops, so
the exported graph takes raw pixels.
"""

import keras
from keras import ops

# ImageNet channel means in BGR order (Caffe preprocessing, as SqueezeNet and ResNet50 were trained).
_CAFFE_MEANS_BGR = (103.939, 116.779, 123.68)
SQUEEZENET_WEIGHTS_URL = ("https://github.com/rcmalli/keras-squeezenet/releases/download/v1.0/"
                          "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
SQUEEZENET_WEIGHTS_SHA256 = "2d935d8c102ad1232484a77da8e6fbdf3ff4ab608974a0d8b6283115ffff204f"

# backbone -> (constructor of keras.applications or None, preprocessing mode, native square image size)
BACKBONES = {
    "small_cnn": (None, "unit", 64),
    "squeezenet": (None, "caffe", 227),
    "mobilenet_v2": ("MobileNetV2", "tf", 224),
    "mobilenet_v3_small": ("MobileNetV3Small", "none", 224),  # rescales inside the model
    "mobilenet_v3_large": ("MobileNetV3Large", "none", 224),
    "efficientnet_b0": ("EfficientNetB0", "none", 224),
    "resnet50": ("ResNet50", "caffe", 224),
}


def squeezenet_v1_1(image_size: int = 227, name: str = "squeezenet") -> keras.Model:
    """SqueezeNet v1.1 without its classifier: images (Caffe-preprocessed) -> (13, 13, 512) at 227x227.

    Layer names follow the original model with `_` for `/` (Keras 3 forbids `/`), so the ImageNet
    weights file of the Keras port loads with `load_weights` (legacy HDF5, matched in layer order).
    """
    inputs = keras.Input((image_size, image_size, 3), name="images")
    outputs = keras.layers.Conv2D(64, 3, strides=2, padding="valid", activation="relu", name="conv1")(inputs)
    outputs = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(outputs)
    for index, (squeeze, expand) in ((2, (16, 64)), (3, (16, 64))):
        outputs = _fire_module(outputs, index, squeeze, expand)
    outputs = keras.layers.MaxPooling2D(3, strides=2, name="pool3")(outputs)
    for index, (squeeze, expand) in ((4, (32, 128)), (5, (32, 128))):
        outputs = _fire_module(outputs, index, squeeze, expand)
    outputs = keras.layers.MaxPooling2D(3, strides=2, name="pool5")(outputs)
    for index, (squeeze, expand) in ((6, (48, 192)), (7, (48, 192)), (8, (64, 256)), (9, (64, 256))):
        outputs = _fire_module(outputs, index, squeeze, expand)
    return keras.Model(inputs, outputs, name=name)


def _fire_module(inputs, index: int, squeeze: int, expand: int):
    """Squeeze 1x1 -> [expand 1x1, expand 3x3] concatenated on channels, ReLU after every convolution."""
    prefix = f"fire{index}"
    squeezed = keras.layers.Conv2D(squeeze, 1, activation="relu", name=f"{prefix}_squeeze1x1")(inputs)
    left = keras.layers.Conv2D(expand, 1, activation="relu", name=f"{prefix}_expand1x1")(squeezed)
    right = keras.layers.Conv2D(expand, 3, padding="same", activation="relu", name=f"{prefix}_expand3x3")(squeezed)
    return keras.layers.Concatenate(axis=-1, name=f"{prefix}_concat")([left, right])


def small_cnn(image_size: int = 64, filters=(32, 64, 128), name: str = "small_cnn") -> keras.Model:
    """A from-scratch CNN: per block two 3x3 convolutions (batch norm, ReLU) and 2x2 max pooling."""
    inputs = keras.Input((image_size, image_size, 3), name="images")
    outputs = inputs
    for block, size in enumerate(filters):
        for layer in range(2):
            outputs = keras.layers.Conv2D(size, 3, padding="same", use_bias=False,
                                          name=f"block{block}_conv{layer}")(outputs)
            outputs = keras.layers.BatchNormalization(momentum=0.9, name=f"block{block}_norm{layer}")(outputs)
            outputs = keras.layers.ReLU(name=f"block{block}_relu{layer}")(outputs)
        outputs = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(outputs)
    return keras.Model(inputs, outputs, name=name)


def build_backbone(backbone: str, image_size: int, filters=(32, 64, 128), weights=None) -> keras.Model:
    """The backbone model (images preprocessed -> feature grid), randomly initialized unless `weights`."""
    if backbone not in BACKBONES:
        raise ValueError(f"image encoder {backbone!r} is not one of {sorted(BACKBONES)}")
    if backbone == "small_cnn":
        return small_cnn(image_size, filters)
    if backbone == "squeezenet":
        return squeezenet_v1_1(image_size)
    constructor = getattr(keras.applications, BACKBONES[backbone][0])
    return constructor(input_shape=(image_size, image_size, 3), include_top=False, weights=weights)


def preprocess(images, mode: str):
    """Pixels 0..255 (RGB) -> the backbone's input scale: `caffe`, `tf` ([-1, 1]), `unit` ([0, 1]) or `none`."""
    images = ops.cast(images, "float32")
    if mode == "caffe":
        return ops.flip(images, axis=-1) - ops.convert_to_tensor(_CAFFE_MEANS_BGR, "float32")
    if mode == "tf":
        return images / 127.5 - 1.0
    if mode == "unit":
        return images / 255.0
    return images


class ImageEncoder(keras.layers.Layer):
    """Images -> a grid of feature vectors, flattened to locations.

    Inputs are RGB pixels in 0..255 (uint8 or float) of shape (batch, image_size, image_size, 3); the
    output is (batch, grid_height * grid_width, channels), row-major over the grid. Pretrained backbones
    always run in inference mode (batch-norm statistics stay fixed, also when fine-tuning); the small CNN
    trains its batch norm. Freeze the encoder with `encoder.trainable = False`.

    Args:
        backbone: A key of `BACKBONES`.
        image_size: Square input size; null uses the backbone's native size.
        filters: Filters per block of `small_cnn`.

    Example:
        >>> encoder = ImageEncoder("squeezenet")
        >>> encoder(keras.ops.zeros((2, 227, 227, 3))).shape
        (2, 169, 512)
    """

    def __init__(self, backbone="small_cnn", image_size=None, filters=(32, 64, 128), **kwargs):
        super().__init__(**kwargs)
        if backbone not in BACKBONES:
            raise ValueError(f"image encoder {backbone!r} is not one of {sorted(BACKBONES)}")
        self.backbone_name = backbone
        self.image_size = image_size or BACKBONES[backbone][2]
        self.filters = tuple(filters)
        self.preprocessing = BACKBONES[backbone][1]
        # === Layers ===
        self.backbone = build_backbone(backbone, self.image_size, self.filters)

    def build(self, input_shape=None):
        self.built = True

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """(grid_height, grid_width, channels) of the feature grid."""
        return tuple(self.backbone.output.shape[1:])

    @property
    def locations(self) -> int:
        return self.grid_shape[0] * self.grid_shape[1]

    @property
    def channels(self) -> int:
        return self.grid_shape[2]

    def call(self, images, training=None):
        grid = self.backbone(preprocess(images, self.preprocessing),
                             training=training if self.backbone_name == "small_cnn" else False)
        return ops.reshape(grid, (-1, self.locations, self.channels))  # (batch, locations, channels)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.locations, self.channels)

    def load_pretrained(self, weights: str) -> None:
        """Loads ImageNet weights: `imagenet` (downloaded and cached by Keras) or a local weights file.

        Raises:
            FileNotFoundError: A weights path that does not exist.
            ValueError: The file does not fit the backbone.
        """
        if weights == "imagenet":
            if self.backbone_name == "small_cnn":
                raise ValueError("model.encoder.weights: small_cnn has no ImageNet weights; use a weights file or null")
            if self.backbone_name == "squeezenet":
                weights = keras.utils.get_file(SQUEEZENET_WEIGHTS_URL.rpartition("/")[2], SQUEEZENET_WEIGHTS_URL,
                                               file_hash=SQUEEZENET_WEIGHTS_SHA256, cache_subdir="models")
            else:
                pretrained = build_backbone(self.backbone_name, self.image_size, weights="imagenet")
                self.backbone.set_weights(pretrained.get_weights())
                return
        try:
            self.backbone.load_weights(weights)
        except FileNotFoundError:
            raise FileNotFoundError(f"model.encoder.weights: file not found: {weights}") from None
        except (ValueError, KeyError) as error:
            raise ValueError(f"model.encoder.weights: {weights} does not fit the {self.backbone_name} "
                             f"encoder ({error})") from None

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update({"backbone": self.backbone_name, "image_size": self.image_size, "filters": list(self.filters)})
        return config
