using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using IlgpuDiffusion.Tensors.Backends;

namespace IlgpuDiffusion.Tensors.Tests;

public class CachingAllocatorTests
{
    /// <summary>A device with room for <paramref name="capacity"/> elements; beyond that an allocation fails as the
    /// managed executor's does. Released buffers give their room back.</summary>
    private sealed class SmallDevice(int capacity)
    {
        public int Live { get; private set; }
        public int Calls { get; private set; }
        public Exception? Failure { get; init; }

        public DeviceBuffer Allocate(int length)
        {
            Calls++;
            if (Failure != null) throw Failure;
            if (Live + length > capacity) throw new OutOfMemoryException();
            Live += length;
            return new Buffer(this, length);
        }

        private sealed class Buffer(SmallDevice device, int length) : DeviceBuffer(length)
        {
            internal override void Release() => device.Live -= Length;
        }
    }

    [Fact]
    public void A_full_device_gets_the_cached_buffers_back_and_the_allocation_is_retried()
    {
        var device = new SmallDevice(capacity: 1024);
        var allocator = new CachingAllocator("test", device.Allocate);
        allocator.Return(allocator.Rent(512));
        allocator.Return(allocator.Rent(128)); // too small to be served by the free 512
        Assert.Equal(4 * 640, allocator.BytesCached);

        var buffer = allocator.Rent(1024);

        Assert.Equal(1024, buffer.Length);
        Assert.Equal(1024, device.Live);
        Assert.Equal(4, device.Calls); // two fills, then the failed and the retried allocation
        Assert.Equal(0, allocator.BytesCached);
        Assert.Equal(4 * 1024, allocator.BytesInUse);
    }

    [Fact]
    public void A_free_buffer_up_to_twice_the_size_serves_a_smaller_request()
    {
        var device = new SmallDevice(capacity: 1 << 20);
        var allocator = new CachingAllocator("test", device.Allocate);
        allocator.Return(allocator.Rent(1024));

        var fitting = allocator.Rent(600);   // bucket 640: the 1024 buffer serves it
        var tooSmall = allocator.Rent(400);  // bucket 448: nothing free, and 1024 would be more than twice
        allocator.Return(fitting);
        var tooLarge = allocator.Rent(2048); // no free buffer is large enough

        Assert.Equal(1024, fitting.Length);
        Assert.Equal(448, tooSmall.Length);
        Assert.Equal(2048, tooLarge.Length);
        Assert.Equal(3, device.Calls);
        Assert.Equal(4 * (448 + 2048), allocator.BytesInUse);
        Assert.Equal(4 * 1024, allocator.BytesCached);
    }

    [Fact]
    public void A_device_without_room_reports_DeviceOutOfMemoryException_with_the_sizes()
    {
        const int mebi = 1 << 20;
        var device = new SmallDevice(capacity: mebi);
        var allocator = new CachingAllocator("test:0", device.Allocate);
        allocator.Rent(mebi);

        var error = Assert.Throws<DeviceOutOfMemoryException>(() => allocator.Rent(mebi / 2));

        Assert.Equal("test:0", error.Device);
        Assert.Equal(2 * mebi, error.RequestedBytes);
        Assert.Equal(4 * mebi, error.BytesInUse);
        Assert.Equal(0, error.BytesCached);
        Assert.IsType<OutOfMemoryException>(error.InnerException);
        Assert.Equal("test:0 is out of memory: allocating 2.0 MiB with 4.0 MiB in use by tensors and 0.0 MiB cached", error.Message);
        Assert.Equal(3, device.Calls);
        Assert.Equal(4 * mebi, allocator.BytesInUse);
    }

    [Fact]
    public void Other_allocation_failures_pass_through_untouched()
    {
        var failure = new InvalidOperationException("driver lost");
        var device = new SmallDevice(capacity: 1024) { Failure = failure };
        var allocator = new CachingAllocator("test", device.Allocate);

        Assert.Same(failure, Assert.Throws<InvalidOperationException>(() => allocator.Rent(16)));
        Assert.Equal(1, device.Calls);
        Assert.Equal(0, allocator.BytesInUse);
    }

    [Fact]
    public void Out_of_memory_is_recognised_by_the_error_the_cpu_executors_and_opencl_report()
    {
        Assert.True(CachingAllocator.IsOutOfMemory(new OutOfMemoryException()));
        Assert.True(CachingAllocator.IsOutOfMemory(new CLException(CLError.CL_MEM_OBJECT_ALLOCATION_FAILURE)));
        Assert.True(CachingAllocator.IsOutOfMemory(new CLException(CLError.CL_OUT_OF_RESOURCES)));
        Assert.False(CachingAllocator.IsOutOfMemory(new CLException(CLError.CL_INVALID_VALUE)));
        Assert.False(CachingAllocator.IsOutOfMemory(new InvalidOperationException("out of memory")));
    }

    /// <summary>A <see cref="CudaException"/> names its error through the driver, so it can only be made where one is.</summary>
    [SkippableFact]
    public void Out_of_memory_is_recognised_by_the_error_cuda_reports()
    {
        TestDevices.Open("cuda");
        Assert.True(CachingAllocator.IsOutOfMemory(new CudaException(CudaError.CUDA_ERROR_OUT_OF_MEMORY)));
        Assert.False(CachingAllocator.IsOutOfMemory(new CudaException(CudaError.CUDA_ERROR_INVALID_VALUE)));
    }
}
