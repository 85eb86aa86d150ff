/*
 * SMILEapi.h: the C interface of openSMILE's libSMILEapi, as serd uses it.
 *
 * Written for serd (no header ships with the PyPI package `opensmile`): every function
 * below is exported by the vendored library (`nm -D --defined-only libSMILEapi.so`),
 * and the types follow the ctypes declarations in opensmile/core/lib.py of
 * opensmile-python 2.6.0. bindgen reads this file in build.rs; the committed fallback
 * bindings in src/opensmile/bindings.rs are generated from it too.
 */
#ifndef SERD_SMILEAPI_H
#define SERD_SMILEAPI_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque handle to one openSMILE instance (component manager, data memory, logger). */
typedef struct smileobj_t_ smileobj_t;

/* Result codes of every smile_* call that can fail. */
typedef enum {
  SMILE_SUCCESS = 0,          /* success */
  SMILE_FAIL = 1,             /* generic error; see smile_error_msg */
  SMILE_INVALID_ARG = 2,      /* an invalid argument was passed */
  SMILE_INVALID_STATE = 3,    /* the instance is in the wrong state for this call */
  SMILE_COMP_NOT_FOUND = 4,   /* no component instance of that name and type */
  SMILE_LICENSE_FAIL = 5,     /* licence check failed */
  SMILE_CONFIG_PARSE_FAIL = 6,/* configuration could not be read */
  SMILE_CONFIG_INIT_FAIL = 7, /* configuration could not be instantiated */
  SMILE_NOT_WRITTEN = 8       /* external source full: try again once openSMILE has read */
} smileres_t;

/* Life cycle of an instance. */
typedef enum {
  SMILE_UNINITIALIZED = 0,
  SMILE_INITIALIZED = 1,
  SMILE_RUNNING = 2,
  SMILE_ENDED = 3
} smilestate_t;

/* Kinds of log message. */
typedef enum {
  SMILE_LOG_MESSAGE = 1,
  SMILE_LOG_WARNING = 2,
  SMILE_LOG_ERROR = 3,
  SMILE_LOG_DEBUG = 4,
  SMILE_LOG_PRINT = 5
} smilelogtype_t;

/* One log message; the strings are valid for the duration of the callback only. */
typedef struct {
  smilelogtype_t type;
  int level;
  const char *text;
  const char *module;
} smilelogmsg_t;

/* A command-line style option, as SMILExtract would receive `-name value`. */
typedef struct {
  const char *name;
  const char *value;
} smileopt_t;

/* Timing of the frames passed to an extended sink callback. */
typedef struct {
  long vIdx;        /* index of the first frame */
  double time;      /* start time of the first frame, seconds */
  double period;    /* frame period, seconds */
  double lengthSec; /* frame length, seconds */
} FrameMetaData;

typedef void (*LogCallback)(smileobj_t *smileobj, smilelogmsg_t message, void *param);
typedef void (*StateChangedCallback)(smileobj_t *smileobj, smilestate_t state, void *param);
/* Receives `vectorSize` floats; return true when consumed. */
typedef bool (*ExternalSinkCallback)(const float *data, long vectorSize, void *param);
/* Receives `nT` frames of `n` floats each (row-major) with their timing. */
typedef bool (*ExternalSinkCallbackEx)(const float *data, long nT, long n, const FrameMetaData *meta, void *param);
typedef bool (*ExternalMessageInterfaceCallback)(const void *message, void *param);
typedef bool (*ExternalMessageInterfaceJsonCallback)(const char *json, void *param);

smileobj_t *smile_new(void);
smileres_t smile_initialize(smileobj_t *smileobj, const char *configFile, int nOptions,
                            const smileopt_t *options, int loglevel, int debug,
                            int consoleOutput, const char *logFile);
/* Runs until end of input or abort; blocks the calling thread. */
smileres_t smile_run(smileobj_t *smileobj);
smileres_t smile_abort(smileobj_t *smileobj);
smileres_t smile_reset(smileobj_t *smileobj);
smileres_t smile_set_log_callback(smileobj_t *smileobj, LogCallback callback, void *param);
smilestate_t smile_get_state(smileobj_t *smileobj);
smileres_t smile_set_state_callback(smileobj_t *smileobj, StateChangedCallback callback, void *param);
void smile_free(smileobj_t *smileobj);

smileres_t smile_extsource_write_data(smileobj_t *smileobj, const char *componentName,
                                      const float *data, int nFrames);
smileres_t smile_extsource_set_external_eoi(smileobj_t *smileobj, const char *componentName);
/* `data` holds `length` bytes in the component's sample format (nBits, channels). */
smileres_t smile_extaudiosource_write_data(smileobj_t *smileobj, const char *componentName,
                                           const void *data, int length);
smileres_t smile_extaudiosource_set_external_eoi(smileobj_t *smileobj, const char *componentName);

smileres_t smile_extsink_set_data_callback(smileobj_t *smileobj, const char *componentName,
                                           ExternalSinkCallback callback, void *param);
smileres_t smile_extsink_set_data_callback_ex(smileobj_t *smileobj, const char *componentName,
                                              ExternalSinkCallbackEx callback, void *param);
smileres_t smile_extsink_get_num_elements(smileobj_t *smileobj, const char *componentName,
                                          long *numElements);
smileres_t smile_extsink_get_element_name(smileobj_t *smileobj, const char *componentName,
                                          long idx, const char **elementName);

smileres_t smile_extmsginterface_set_msg_callback(smileobj_t *smileobj, const char *componentName,
                                                  ExternalMessageInterfaceCallback callback,
                                                  void *param);
smileres_t smile_extmsginterface_set_json_msg_callback(smileobj_t *smileobj,
                                                       const char *componentName,
                                                       ExternalMessageInterfaceJsonCallback callback,
                                                       void *param);

/* Message of the last failed call on this instance; owned by the instance. */
const char *smile_error_msg(smileobj_t *smileobj);

#ifdef __cplusplus
}
#endif

#endif /* SERD_SMILEAPI_H */
