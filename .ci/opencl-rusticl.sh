# Sourced by .ci/run: Mesa's rusticl OpenCL driver on llvmpipe (a CPU), so that the tests run the ILGPU kernels through
# ILGPU's OpenCL code generation (README: OpenCL on rusticl). Installs the ICD (about 61 MB) when it is missing.
if [ ! -f /etc/OpenCL/vendors/rusticl.icd ]; then
  apt-get update -qq && apt-get install -y -qq mesa-opencl-icd ocl-icd-libopencl1 >/dev/null
fi
# rusticl exposes llvmpipe only when asked; only its ICD (Mesa's Clover is installed too); the opt-in for devices that
# report neither the generic address space nor OpenCL C 2.0
export RUSTICL_ENABLE=llvmpipe OCL_ICD_VENDORS=/etc/OpenCL/vendors/rusticl.icd ILDM_OPENCL_FORCE_CL20=1
