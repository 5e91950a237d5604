Console.WriteLine("ildm");
